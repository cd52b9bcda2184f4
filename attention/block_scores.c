/* block_scores.c: block importance from pooled (composite) queries and keys.
 *
 * Composite query u covers query tokens [u*cq, min((u+1)*cq, Nq)) and composite key t covers key
 * tokens [t*ck, ...). A composite key is visible to a composite query when its first token is
 * visible to the composite query's last token; with prefix masks that is a prefix of composite
 * keys. Each row is softmaxed in fp32 (base 2: the pooled queries carry scale * log2 e), and the
 * mass is summed per key block and averaged over the block's composite rows, so it sums to 1. */
#include "internal.h"
#include "tile_kernels.h"

#include <cblas.h>
#include <string.h>

int us_pooled_block_importance_heads(const us_pooled *pl, const us_geom *g, int block, int64_t h0, int64_t nh,
                                     int64_t qblock, float *qbuf, float *work, float *importance, float *row_mass)
{
    int64_t nkb = us_ceil_div(g->nk, block);
    memset(importance, 0, (size_t)(nh * nkb) * sizeof *importance);
    int64_t per_block = block / pl->cq;
    int64_t u0 = qblock * per_block, u1 = us_min64(u0 + per_block, pl->nqc);
    int64_t rows = u1 - u0;
    if (rows <= 0) return 0;
    /* the last composite query sees the most keys */
    int64_t last_tok = us_min64(u1 * pl->cq, g->nq) - 1;
    int64_t ncols = us_min64(pl->nkc, g->limit[last_tok] / pl->ck + 1);
    const float *q = pl->qc + (h0 * pl->nqc + u0) * pl->dim;
    if (nh > 1) {
        for (int64_t hh = 0; hh < nh; hh++)
            memcpy(qbuf + hh * rows * pl->dim, pl->qc + ((h0 + hh) * pl->nqc + u0) * pl->dim,
                   (size_t)(rows * pl->dim) * sizeof *qbuf);
        q = qbuf;
    }
    const float *k = pl->khead ? pl->khead[h0] : pl->kc + h0 * pl->nkc * pl->dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nh * rows), (int)ncols, (int)pl->dim, 1.0f, q,
                (int)pl->dim, k, (int)pl->dim, 0.0f, work, (int)ncols);
    float inv_rows = 1.0f / (float)rows;
    int64_t keys_per_block = block / pl->ck;
    for (int64_t x = 0; x < nh * rows; x++) {
        int64_t hh = x / rows, r = x % rows;
        float *z = work + x * ncols, *imp = importance + hh * nkb;
        int64_t tok = us_min64((u0 + r + 1) * pl->cq, g->nq) - 1;
        int64_t nv = us_min64(ncols, g->limit[tok] / pl->ck + 1);
        /* base-2 softmax numerators over the visible prefix, vectorised */
        float sum = us_tile_exp2_row(z, (int)nv, us_tile_row_max(z, (int)nv));
        float norm = inv_rows / sum;
        float *mine = row_mass ? row_mass + x * nkb : NULL;
        if (mine) memset(mine, 0, (size_t)nkb * sizeof *mine);
        for (int64_t b = 0; b * keys_per_block < nv; b++) {
            int64_t t1 = us_min64((b + 1) * keys_per_block, nv);
            float acc = 0.0f;
            for (int64_t t = b * keys_per_block; t < t1; t++) acc += z[t];
            imp[b] += acc * norm;
            if (mine) mine[b] = acc / sum;
        }
    }
    return (int)rows;
}

int us_pooled_block_importance(const us_pooled *pl, const us_geom *g, int block, int64_t h, int64_t qblock,
                               float *work, float *importance, float *row_mass)
{
    return us_pooled_block_importance_heads(pl, g, block, h, 1, qblock, NULL, work, importance, row_mass);
}
