/* block_scores.c: block importance from pooled (composite) queries and keys.
 *
 * Composite query u covers query tokens [u*cq, min((u+1)*cq, Nq)) and composite key t covers key
 * tokens [t*ck, ...). A composite key is visible to a composite query when its first token is
 * visible to the composite query's last token; with prefix masks that is a prefix of composite
 * keys. Each row is softmaxed in fp32 (base 2: the pooled queries carry scale * log2 e), and the
 * mass is summed per key block and averaged over the block's composite rows, so it sums to 1.
 *
 * Scoring and the masses are separate steps so that one product can score the composite rows of
 * several query blocks (and several heads sharing keys): at long context the keys are the
 * memory-bound operand, and a product per query block would read them once per block. */
#include "internal.h"
#include "tile_kernels.h"

#include <cblas.h>
#include <string.h>

/* Composite rows [u0, u1) of query blocks [i0, i1). */
static void block_rows(const us_pooled *pl, int block, int64_t i0, int64_t i1, int64_t *u0, int64_t *u1)
{
    int64_t per_block = block / pl->cq;
    *u0 = i0 * per_block;
    *u1 = us_min64(i1 * per_block, pl->nqc);
}

/* Composite keys visible to composite query u (its last token's prefix). */
static int64_t visible_cols(const us_pooled *pl, const us_geom *g, int64_t u)
{
    int64_t tok = us_min64((u + 1) * pl->cq, g->nq) - 1;
    return us_min64(pl->nkc, g->limit[tok] / pl->ck + 1);
}

int64_t us_pooled_scores(const us_pooled *pl, const us_geom *g, int block, int64_t h0, int64_t nh, int64_t i0,
                         int64_t i1, float *qbuf, float *z)
{
    int64_t u0, u1;
    block_rows(pl, block, i0, i1, &u0, &u1);
    int64_t rows = u1 - u0;
    if (rows <= 0) return 0;
    int64_t ncols = visible_cols(pl, g, u1 - 1); /* the last composite query sees the most keys */
    const float *q = pl->qc + (h0 * pl->nqc + u0) * pl->dim;
    if (nh > 1) {
        for (int64_t hh = 0; hh < nh; hh++)
            memcpy(qbuf + hh * rows * pl->dim, pl->qc + ((h0 + hh) * pl->nqc + u0) * pl->dim,
                   (size_t)(rows * pl->dim) * sizeof *qbuf);
        q = qbuf;
    }
    const float *k = pl->khead ? pl->khead[h0] : pl->kc + h0 * pl->nkc * pl->dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nh * rows), (int)ncols, (int)pl->dim, 1.0f, q,
                (int)pl->dim, k, (int)pl->dim, 0.0f, z, (int)ncols);
    return ncols;
}

int us_pooled_block_mass(const us_pooled *pl, const us_geom *g, int block, int64_t nh, int64_t i0, int64_t i1,
                         int64_t i, float *z, int64_t ldz, float *importance, float *row_mass)
{
    int64_t nkb = us_ceil_div(g->nk, block);
    memset(importance, 0, (size_t)(nh * nkb) * sizeof *importance);
    int64_t g0, g1, u0, u1;
    block_rows(pl, block, i0, i1, &g0, &g1);
    block_rows(pl, block, i, i + 1, &u0, &u1);
    int64_t rows = u1 - u0, group_rows = g1 - g0;
    if (rows <= 0) return 0;
    float inv_rows = 1.0f / (float)rows;
    int64_t keys_per_block = block / pl->ck;
    for (int64_t x = 0; x < nh * rows; x++) {
        int64_t hh = x / rows, r = x % rows;
        float *zr = z + (hh * group_rows + (u0 - g0) + r) * ldz, *imp = importance + hh * nkb;
        int64_t nv = us_min64(ldz, visible_cols(pl, g, u0 + r));
        /* base-2 softmax numerators over the visible prefix, vectorised */
        float sum = us_tile_exp2_row(zr, (int)nv, us_tile_row_max(zr, (int)nv));
        float norm = inv_rows / sum;
        float *mine = row_mass ? row_mass + x * nkb : NULL;
        if (mine) memset(mine, 0, (size_t)nkb * sizeof *mine);
        for (int64_t b = 0; b * keys_per_block < nv; b++) {
            int64_t t1 = us_min64((b + 1) * keys_per_block, nv);
            float acc = 0.0f;
            for (int64_t t = b * keys_per_block; t < t1; t++) acc += zr[t];
            imp[b] += acc * norm;
            if (mine) mine[b] = acc / sum;
        }
    }
    return (int)rows;
}

int us_pooled_block_importance_heads(const us_pooled *pl, const us_geom *g, int block, int64_t h0, int64_t nh,
                                     int64_t qblock, float *qbuf, float *work, float *importance, float *row_mass)
{
    int64_t ldz = us_pooled_scores(pl, g, block, h0, nh, qblock, qblock + 1, qbuf, work);
    return us_pooled_block_mass(pl, g, block, nh, qblock, qblock + 1, qblock, work, ldz, importance, row_mass);
}

int us_pooled_block_importance(const us_pooled *pl, const us_geom *g, int block, int64_t h, int64_t qblock,
                               float *work, float *importance, float *row_mass)
{
    return us_pooled_block_importance_heads(pl, g, block, h, 1, qblock, NULL, work, importance, row_mass);
}
