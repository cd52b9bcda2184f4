/* siglip.h: the SigLIP vision tower on the CPU (Gemma 3's image encoder; spec: shared/specs/gemma3.md,
 * "Vision path").
 *
 *   us_siglip *s = NULL;  us_error err;
 *   if (us_siglip_create(&weights, 0, &s, &err)) ...                 // scratch sized once
 *   float *out = malloc(us_siglip_num_patches(&weights.cfg) * weights.cfg.hidden_size * sizeof(float));
 *   us_siglip_forward(s, pixels, out, &err);  // pixels (3, S, S) CHW in [-1, 1] -> out (P, C)
 *   us_siglip_free(&s);
 *
 * The tower: a convolution with kernel = stride = patch_size (+ bias) cuts the image into P = (S / p)^2
 * patches, row-major; a learned position embedding is added; num_layers pre-LN encoder layers follow,
 * x += out_proj(MHA(LN1 x)) with biases and no mask, x += fc2(gelu_tanh(fc1(LN2 x))); post_layernorm.
 * LayerNorms are the standard ones (weight and bias as stored: no (1 + w) here). The output is
 * transformers' last_hidden_state. Weights are views in their stored dtype (see vit_ops.h) that the
 * caller fills and owns (pipeline/runtime/gemma3_vision.c reads them from a checkpoint); activations
 * are f32. The attention goes through the project's dense kernel (us_attention_dense, bidirectional). */
#ifndef UNISPARSE_SIGLIP_H
#define UNISPARSE_SIGLIP_H

#include "unisparse/attention.h"
#include "vit_ops.h"

#include <stdint.h>

typedef struct {
    int image_size;        /* S: images are (num_channels, S, S) */
    int patch_size;        /* p: kernel and stride of the patch convolution */
    int num_channels;
    int hidden_size;       /* C */
    int intermediate_size; /* I */
    int num_layers;
    int num_heads;         /* C / num_heads = the head dim, a multiple of 8 */
    float layer_norm_eps;
} us_siglip_config;

/* transformers' SiglipVisionConfig defaults (siglip-base-patch16-224): a Hub config.json's missing
 * vision_config fields take these. */
void us_siglip_config_default(us_siglip_config *c);

/* Range and consistency checks; messages name path and the vision_config field. */
us_status us_siglip_config_validate(const us_siglip_config *c, const char *path, us_error *err);

/* Patches per side (S / p, pixels beyond a whole patch ignored, as the convolution does) and in all. */
static inline int64_t us_siglip_patches_per_side(const us_siglip_config *c) { return c->image_size / c->patch_size; }
static inline int64_t us_siglip_num_patches(const us_siglip_config *c)
{
    return us_siglip_patches_per_side(c) * us_siglip_patches_per_side(c);
}

typedef struct {
    us_vit_mat q, k, v, o;             /* (C, C) each, Linear weights (out, in) */
    us_vit_mat fc1, fc2;               /* (I, C), (C, I) */
    const float *q_b, *k_b, *v_b, *o_b; /* (C) f32 */
    const float *fc1_b, *fc2_b;        /* (I), (C) */
    const float *ln1_w, *ln1_b;        /* (C): layer_norm1 */
    const float *ln2_w, *ln2_b;        /* (C): layer_norm2 */
} us_siglip_layer;

typedef struct {
    us_siglip_config cfg;
    us_vit_mat patch;                  /* (C, channels * p * p): the kernel [C, channels, p, p], row-major */
    const float *patch_b;              /* (C) */
    us_vit_mat pos;                    /* (P, C): position_embedding */
    const us_siglip_layer *layers;     /* (num_layers) */
    const float *post_ln_w, *post_ln_b; /* (C) */
} us_siglip_weights;

typedef struct us_siglip us_siglip;

/* Scratch for one image at a time; w (and what it points to) must outlive the context.
 * threads: 0 = OpenMP's default. */
us_status us_siglip_create(const us_siglip_weights *w, int threads, us_siglip **out, us_error *err);
void us_siglip_free(us_siglip **s);

/* pixels (num_channels, S, S) CHW, preprocessed (for Gemma 3: in [-1, 1]) -> out (P, C), the
 * post_layernorm output. A non-finite pixel is an error naming it. Allocates nothing of its own (the
 * attention kernel allocates internally). */
us_status us_siglip_forward(us_siglip *s, const float *pixels, float *out, us_error *err);

#endif
