/* vit_ops.h: the building blocks of the vision encoders (SigLIP, Gemma 3's projector) on the CPU.
 *
 *   us_vit_mat W = {data, US_BF16, N, K};                 // a view inside a checkpoint's mapping
 *   float *scratch = malloc(nt * us_vit_scratch(K) * sizeof(float));
 *   us_vit_linear(x, T, K, &W, bias, y, N, scratch, nt);  // y (T, N) = x (T, K) W^T + bias
 *
 * Weights stay in their stored dtype (f32, f16 or bf16); a product converts one tile of US_VIT_TILE
 * weight rows (or columns) at a time into the calling thread's scratch and multiplies it with
 * cblas_sgemm, so a matrix is never copied whole and nothing is allocated per call. f32 weights are
 * used in place. Activations are f32. */
#ifndef UNISPARSE_VIT_OPS_H
#define UNISPARSE_VIT_OPS_H

#include "unisparse/attention.h"
#include "unisparse/fast_exp2.h"

#include <stdint.h>

#define US_VIT_TILE 64

/* A row-major (rows, cols) matrix in its stored dtype; nothing is owned. */
typedef struct {
    const void *data;
    us_dtype dtype;
    int64_t rows, cols;
} us_vit_mat;

/* Floats of scratch per thread for a product whose contraction length is k. */
static inline int64_t us_vit_scratch(int64_t k) { return (int64_t)US_VIT_TILE * k; }

/* Rows [r0, r0 + nr) and columns [c0, c0 + nc) of m as f32 into out (nr, nc), row stride nc. */
void us_vit_mat_block(const us_vit_mat *m, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float *out);

/* y (T, W->rows), row stride ldy  =  x (T, W->cols), row stride ldx  times W^T  (+ bias (W->rows) when
 * not NULL): a Linear layer. scratch: nthreads * us_vit_scratch(W->cols) floats. */
void us_vit_linear(const float *x, int64_t T, int64_t ldx, const us_vit_mat *W, const float *bias, float *y,
                   int64_t ldy, float *scratch, int nthreads);

/* y (T, W->cols), row stride ldy  =  x (T, W->rows), row stride ldx  times W: for weights stored
 * (in, out) rather than as a Linear's (out, in). scratch: nthreads * us_vit_scratch(W->rows) floats. */
void us_vit_matmul(const float *x, int64_t T, int64_t ldx, const us_vit_mat *W, float *y, int64_t ldy,
                   float *scratch, int nthreads);

/* LayerNorm with weight and bias over n: y = (x - mean) / sqrt(var + eps) * w + b. In place allowed. */
void us_vit_layernorm(const float *x, const float *w, const float *b, int64_t n, float eps, float *y);

/* Gemma's RMSNorm over n: y = x * rsqrt(mean(x^2) + eps) * w1, with w1 = (1 + w) already. In place allowed. */
void us_vit_rmsnorm(const float *x, const float *w1, int64_t n, float eps, float *y);

/* GELU, tanh approximation (gelu_pytorch_tanh): 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3),
 * written as x / (1 + t) for u >= 0 and x t / (1 + t) for u < 0, t = e^(-2|u|): the exponent is never
 * positive (us_exp2f's domain) and nothing cancels where tanh(u) is near -1. Branch-free, so that a
 * loop of it vectorises (glibc's scalar tanhf, through expm1f, took a tenth of the CPU prefill). */
static inline float us_vit_gelu_tanh(float x)
{
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    const float t = us_exp2f(-2.8853900817779268f * fabsf(u)); /* 2 log2(e) */
    return (u >= 0.0f ? x : x * t) / (1.0f + t);
}

#endif
