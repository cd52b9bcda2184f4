/* gemma3_matmul.h: y = x W^T with W kept in its stored dtype (f32 / f16 / bf16).
 *
 * W (N, K) is cut into tiles of US_RT_TILE rows; each OpenMP thread converts its tile to f32 in its
 * own scratch (f32 weights are used in place) and multiplies with cblas_sgemm, so the model is never
 * copied to f32 as a whole and nothing is allocated per call. */
#ifndef UNISPARSE_GEMMA3_MATMUL_H
#define UNISPARSE_GEMMA3_MATMUL_H

#include "gemma3_weights.h"

#include <stdint.h>

#define US_RT_TILE 64

/* Floats of scratch per thread for matrices with at most max_cols columns. */
static inline int64_t us_rt_matmul_scratch(int64_t max_cols) { return US_RT_TILE * max_cols; }

/* y (T, W->rows), row stride ldy  =  x (T, W->cols), row stride ldx  times W^T.
 * scratch: nthreads * us_rt_matmul_scratch(W->cols) floats. */
void us_rt_matmul(const float *x, int64_t T, int64_t ldx, const us_gemma3_mat *W, float *y, int64_t ldy,
                  float *scratch, int nthreads);

#endif
