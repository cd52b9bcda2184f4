/* vit_ops.c: stored-dtype products, LayerNorm, RMSNorm and GELU for the vision encoders (see vit_ops.h).
 * The products cut the work into (weight tile, block of x rows) items, as the text decoder's matmul does,
 * so that a narrow matrix still keeps every thread busy on a long sequence of patches. */
#include "vit_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void us_vit_mat_block(const us_vit_mat *m, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float *out)
{
    for (int64_t r = 0; r < nr; r++) {
        const int64_t at = (r0 + r) * m->cols + c0;
        float *o = out + r * nc;
        switch (m->dtype) {
        case US_F32: memcpy(o, (const float *)m->data + at, (size_t)nc * sizeof *o); break;
        case US_BF16: {
            const uint16_t *s = (const uint16_t *)m->data + at;
            for (int64_t i = 0; i < nc; i++) o[i] = us_bf16_to_f32(s[i]);
            break;
        }
        case US_F16: {
            const uint16_t *s = (const uint16_t *)m->data + at;
            for (int64_t i = 0; i < nc; i++) o[i] = us_f16_to_f32(s[i]);
            break;
        }
        }
    }
}

/* Row blocks per weight tile: about 2 items per thread, blocks of at least 32 rows. */
static int64_t row_blocks(int64_t T, int64_t tiles, int nthreads)
{
    int64_t tb = (2 * (int64_t)nthreads + tiles - 1) / tiles, max_tb = (T + 31) / 32;
    if (tb > max_tb) tb = max_tb;
    return tb < 1 ? 1 : tb;
}

void us_vit_linear(const float *x, int64_t T, int64_t ldx, const us_vit_mat *W, const float *bias, float *y,
                   int64_t ldy, float *scratch, int nthreads)
{
    const int64_t N = W->rows, K = W->cols, tiles = (N + US_VIT_TILE - 1) / US_VIT_TILE;
    const int64_t tb = row_blocks(T, tiles, nthreads), rows = (T + tb - 1) / tb;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t item = 0; item < tiles * tb; item++) {
        const int64_t t = item / tb, r0 = (item % tb) * rows, nr = T - r0 < rows ? T - r0 : rows;
        const int64_t n0 = t * US_VIT_TILE, nb = N - n0 < US_VIT_TILE ? N - n0 : US_VIT_TILE;
        if (nr <= 0) continue;
        const float *wt;
        if (W->dtype == US_F32) {
            wt = (const float *)W->data + n0 * K;
        } else {
            float *buf = scratch + (int64_t)omp_get_thread_num() * us_vit_scratch(K);
            us_vit_mat_block(W, n0, nb, 0, K, buf);
            wt = buf;
        }
        /* y[r0:r0+nr, n0:n0+nb] (nr, nb) = x[r0:r0+nr] (nr, K) * wt^T (K, nb) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nb, (int)K, 1.0f, x + r0 * ldx, (int)ldx,
                    wt, (int)K, 0.0f, y + r0 * ldy + n0, (int)ldy);
        if (bias)
            for (int64_t r = 0; r < nr; r++) {
                float *yr = y + (r0 + r) * ldy + n0;
                for (int64_t j = 0; j < nb; j++) yr[j] += bias[n0 + j];
            }
    }
}

void us_vit_matmul(const float *x, int64_t T, int64_t ldx, const us_vit_mat *W, float *y, int64_t ldy,
                   float *scratch, int nthreads)
{
    const int64_t K = W->rows, N = W->cols, tiles = (N + US_VIT_TILE - 1) / US_VIT_TILE;
    const int64_t tb = row_blocks(T, tiles, nthreads), rows = (T + tb - 1) / tb;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t item = 0; item < tiles * tb; item++) {
        const int64_t t = item / tb, r0 = (item % tb) * rows, nr = T - r0 < rows ? T - r0 : rows;
        const int64_t n0 = t * US_VIT_TILE, nb = N - n0 < US_VIT_TILE ? N - n0 : US_VIT_TILE;
        if (nr <= 0) continue;
        const float *wt;
        int64_t ldw;
        if (W->dtype == US_F32) { /* the column tile W[:, n0:n0+nb] in place, row stride N */
            wt = (const float *)W->data + n0;
            ldw = N;
        } else {
            float *buf = scratch + (int64_t)omp_get_thread_num() * us_vit_scratch(K);
            us_vit_mat_block(W, 0, K, n0, nb, buf);
            wt = buf;
            ldw = nb;
        }
        /* y[r0:r0+nr, n0:n0+nb] (nr, nb) = x[r0:r0+nr] (nr, K) * wt (K, nb) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)nb, (int)K, 1.0f, x + r0 * ldx,
                    (int)ldx, wt, (int)ldw, 0.0f, y + r0 * ldy + n0, (int)ldy);
    }
}

void us_vit_layernorm(const float *x, const float *w, const float *b, int64_t n, float eps, float *y)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    const float mean = (float)(s / (double)n);
    double v = 0.0;
    for (int64_t i = 0; i < n; i++) v += (double)(x[i] - mean) * (x[i] - mean);
    const float r = 1.0f / sqrtf((float)(v / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * r * w[i] + b[i];
}

void us_vit_rmsnorm(const float *x, const float *w1, int64_t n, float eps, float *y)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float r = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * r) * w1[i];
}

