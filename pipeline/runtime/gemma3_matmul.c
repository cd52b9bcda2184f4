/* gemma3_matmul.c: tiled x W^T over stored-dtype weights (see gemma3_matmul.h).
 * Work items are (weight tile, block of x rows): narrow matrices (k_proj, v_proj: few tiles) are also
 * split along the tokens so a long prefill keeps every thread busy; a tile is converted once per item. */
#include "gemma3_matmul.h"

#include <cblas.h>
#include <omp.h>

void us_rt_matmul(const float *x, int64_t T, int64_t ldx, const us_gemma3_mat *W, float *y, int64_t ldy,
                  float *scratch, int nthreads)
{
    const int64_t N = W->rows, K = W->cols, tiles = (N + US_RT_TILE - 1) / US_RT_TILE;
    /* row blocks: enough items for about 2 per thread, blocks of at least 32 rows */
    int64_t tb = (2 * (int64_t)nthreads + tiles - 1) / tiles, max_tb = (T + 31) / 32;
    if (tb > max_tb) tb = max_tb;
    if (tb < 1) tb = 1;
    const int64_t rows = (T + tb - 1) / tb;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t item = 0; item < tiles * tb; item++) {
        const int64_t t = item / tb, r0 = (item % tb) * rows, nr = T - r0 < rows ? T - r0 : rows;
        const int64_t n0 = t * US_RT_TILE, nb = N - n0 < US_RT_TILE ? N - n0 : US_RT_TILE;
        if (nr <= 0) continue;
        const float *wt;
        if (W->dtype == US_F32 && !W->ggml_type) {
            wt = (const float *)W->data + n0 * K;
        } else {
            float *buf = scratch + (int64_t)omp_get_thread_num() * us_rt_matmul_scratch(K);
            for (int64_t r = 0; r < nb; r++) us_gemma3_mat_row(W, n0 + r, buf + r * K);
            wt = buf;
        }
        /* y[r0:r0+nr, n0:n0+nb] (nr, nb) = x[r0:r0+nr] (nr, K) * wt^T (K, nb) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nb, (int)K, 1.0f, x + r0 * ldx, (int)ldx,
                    wt, (int)K, 0.0f, y + r0 * ldy + n0, (int)ldy);
    }
}
