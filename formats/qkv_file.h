/* qkv_file.h: one attention input as a safetensors file, the format `unisparse attn --qkv` reads
 * and `unisparse generate --dump-qkv` writes.
 *
 * Tensors: q [Hq, N, d], k [Hkv, N, d], v [Hkv, N, d], each F32, F16 or BF16.
 * __metadata__: "mask": "causal" (default) | "bidirectional" | "spans";
 *               "spans": "[[start, end], ...]" for "spans"; optional "q_offset", "scale".
 */
#ifndef UNISPARSE_QKV_FILE_H
#define UNISPARSE_QKV_FILE_H

#include "safetensors.h"

typedef struct {
    us_safetensors *file; /* owns the mapping the tensors point into */
    us_tensor q, k, v;
    us_mask mask;
    us_span *spans;       /* owned */
    void *copies[3];      /* owned: aligned copies of tensors stored misaligned in the file */
    int64_t q_offset;     /* -1: Nk - Nq */
    float scale;          /* 0: 1/sqrt(d) */
} us_qkv;

/* Loads and validates path; errors name the file and the tensor or key at fault. */
us_status us_qkv_load(const char *path, us_qkv *out, us_error *err);
void us_qkv_free(us_qkv *x);

/* Writes q, k, v and the mask atomically. */
us_status us_qkv_save(const char *path, const us_tensor *q, const us_tensor *k, const us_tensor *v,
                      const us_mask *mask, us_error *err);

#endif
