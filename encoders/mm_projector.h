/* mm_projector.h: Gemma 3's multimodal projector, vision patches -> the text decoder's image soft tokens.
 *
 *   float *scratch = malloc(us_mm_projector_scratch(&p, nt) * sizeof(float));
 *   us_mm_projector_forward(&p, patches, out, scratch, nt, &err);  // (P, Cv) -> (N, Ct)
 *
 * The P = side^2 patches (row-major, the SigLIP tower's output) form a side x side grid that is
 * average-pooled with kernel = stride = side / tokens_per_side into N = tokens_per_side^2 tokens
 * (row-major); each token gets Gemma's RMSNorm with (1 + w) and the vision config's layer_norm_eps, and
 * is multiplied by mm_input_projection_weight, stored (Cv, Ct): y = x W, not a Linear's x W^T. The
 * output rows are not scaled by sqrt(Ct): they replace the decoder's scaled embeddings as they are. */
#ifndef UNISPARSE_MM_PROJECTOR_H
#define UNISPARSE_MM_PROJECTOR_H

#include "unisparse/attention.h"
#include "vit_ops.h"

#include <stdint.h>

typedef struct {
    int patches_per_side;  /* side of the input grid (SigLIP's image_size / patch_size) */
    int tokens_per_side;   /* side of the pooled grid: sqrt(mm_tokens_per_image) */
    float eps;             /* RMSNorm epsilon: the vision config's layer_norm_eps */
    const float *norm;     /* (Cv): mm_soft_emb_norm as 1 + w, f32; not owned */
    us_vit_mat proj;       /* (Cv, Ct): mm_input_projection_weight; not owned */
} us_mm_projector;

/* Checks the geometry (tokens_per_side divides patches_per_side) and the pointers. */
us_status us_mm_projector_check(const us_mm_projector *p, us_error *err);

/* Tokens out: tokens_per_side^2. */
static inline int64_t us_mm_projector_tokens(const us_mm_projector *p)
{
    return (int64_t)p->tokens_per_side * p->tokens_per_side;
}

/* Floats of scratch that us_mm_projector_forward needs with nthreads threads. */
int64_t us_mm_projector_scratch(const us_mm_projector *p, int nthreads);

/* patches (patches_per_side^2, Cv) -> out (tokens, Ct). nthreads >= 1. */
us_status us_mm_projector_forward(const us_mm_projector *p, const float *patches, float *out, float *scratch,
                                  int nthreads, us_error *err);

#endif
