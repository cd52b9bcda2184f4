/* gemma3_weights.h: the Gemma 3 text-decoder weights of a Hugging Face directory, memory-mapped.
 *
 * Reads <dir>/config.json and <dir>/model.safetensors, or the shards listed by
 * <dir>/model.safetensors.index.json. Tensor names are normalised (the prefixes model.,
 * model.language_model., language_model.model. are dropped). A Gemma3ForConditionalGeneration
 * directory (config.json with a "vision_config") also gets its vision tower and projector, in
 * w->vision (gemma3_vision.h), under whichever prefixes its transformers version wrote. Matrices
 * stay in their stored dtype (f32, f16 or bf16) inside the mapping and are converted to f32 a tile at
 * a time where used; only the small RMSNorm vectors are copied, as f32 (1 + w). Every shape is
 * checked against the config; messages name the file and the tensor. */
#ifndef UNISPARSE_GEMMA3_WEIGHTS_H
#define UNISPARSE_GEMMA3_WEIGHTS_H

#include "gemma3_config.h"
#include "unisparse/attention.h"

#include <stdint.h>

/* A row-major (rows, cols) matrix in its stored dtype, inside a mapping. When ggml_type is non-zero
 * the rows are ggml-quantised blocks (ggml_type - 1 is the us_ggml_type, row_bytes bytes a row),
 * dequantised a row at a time where used, and dtype is US_F32 (the dtype rows convert to). */
typedef struct {
    const void *data;
    us_dtype dtype;
    int64_t rows, cols;
    uint32_t ggml_type; /* 0: plain dtype; else us_ggml_type + 1 */
    size_t row_bytes;   /* quantised rows only */
} us_gemma3_mat;

typedef struct {
    us_gemma3_mat q, k, v, o;          /* (H*d, C), (K*d, C), (K*d, C), (C, H*d) */
    us_gemma3_mat gate, up, down;      /* (I, C), (I, C), (C, I) */
    float *in_norm, *post_attn_norm;   /* (C): 1 + w, f32 */
    float *pre_ff_norm, *post_ff_norm; /* (C) */
    float *q_norm, *k_norm;            /* (d) */
} us_gemma3_layer;

typedef struct us_gemma3_weights {
    us_gemma3_config cfg;
    us_gemma3_mat embed;   /* (V, C) */
    us_gemma3_mat lm_head; /* (V, C): embed when tied */
    float *final_norm;     /* (C): 1 + w */
    us_gemma3_layer *layers;
    float embed_scale;     /* sqrt(C) rounded to the embedding dtype */
    struct us_gemma3_vision *vision; /* the image path (gemma3_vision.h); NULL for text-only checkpoints */
    /* private */
    void **files;          /* us_safetensors * */
    int n_files;
    float *norm_block;     /* every (1 + w) vector, one allocation */
    void *gguf;            /* us_gguf *, when loaded from a GGUF file */
} us_gemma3_weights;

/* dir: a Hugging Face directory, or a .gguf file (any regular file starting with the GGUF magic),
 * which us_gemma3_weights_load_gguf reads. */
us_status us_gemma3_weights_load(const char *dir, us_gemma3_weights **out, us_error *err);

/* A llama.cpp GGUF checkpoint (general.architecture gemma3): the config from the gemma3.* metadata,
 * tensors by their GGUF names (token_embd, blk.N.attn_q, ..., output_norm), quantised matrices kept
 * quantised in the mapping. GGUF RMSNorm weights already hold 1 + w: they are used as stored.
 * Errors name the file and the key or tensor. Defined in gemma3_gguf.c. */
us_status us_gemma3_weights_load_gguf(const char *path, us_gemma3_weights **out, us_error *err);

/* The GGUF file behind w, or NULL for a safetensors directory. */
struct us_gguf;
const struct us_gguf *us_gemma3_weights_gguf(const us_gemma3_weights *w);
void us_gemma3_weights_free(us_gemma3_weights **w);
/* For the loaders: allocates w->layers and the norm vectors' one block for w->cfg and points
 * final_norm and every layer's norms into it. */
us_status us_gemma3_weights_alloc_layers(us_gemma3_weights *w, us_error *err);

/* The parts of a checkpoint, whose tensor names carry different prefixes:
 *   TEXT       (none), model., model.language_model., language_model.model., language_model.
 *   VISION     vision_tower.vision_model., model.vision_tower.vision_model., vision_tower., model.vision_tower.
 *   PROJECTOR  multi_modal_projector., model.multi_modal_projector. */
typedef enum { US_GEMMA3_PART_TEXT, US_GEMMA3_PART_VISION, US_GEMMA3_PART_PROJECTOR } us_gemma3_part;

/* For the loaders: the tensor `name` (without prefix) of part, in the safetensors files of w (loaded from
 * dir), checked to be F32, F16 or BF16 with shape[0, ndim); its data (inside the mapping) and dtype.
 * Errors name dir (missing) or the file, and the tensor with both shapes. */
us_status us_gemma3_weights_tensor(const us_gemma3_weights *w, const char *dir, us_gemma3_part part, const char *name,
                                   int ndim, const int64_t *shape, const void **data, us_dtype *dtype, us_error *err);

/* Row r of m as f32 (cols floats). */
void us_gemma3_mat_row(const us_gemma3_mat *m, int64_t r, float *out);

#endif
