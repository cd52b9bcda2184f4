/* last_queries.c: the pieces the baseline selectors share.
 *
 * MInference and FlexPrefill estimate a head's pattern from the exact attention of its last few
 * queries: summed per key that is the "vertical" score, summed per diagonal offset
 * pos(query) - key the "slash" score. The heaviest columns and diagonals are chosen and rounded to
 * key blocks: a tile (query block i, key block j) is kept when j holds a chosen column visible to
 * the block, or when some (query of i, key of j) pair lies on a chosen diagonal. The diagonal test
 * is made on the tile's rectangle through a prefix count over offsets, O(1) per tile; inside a
 * partially visible tile the crossing may lie in its masked part, which keeps a visible tile that
 * a token-level test would skip (never an invisible one). The small row helpers (forced sink and
 * diagonal, a floor filled with the most recent blocks, writing a row) serve every baseline. */
#include "internal.h"
#include "tile_kernels.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void us_keep_sink_diagonal(uint8_t *keep, int32_t visible, int32_t diag_first, int32_t diag_last,
                           int sink_blocks)
{
    if (visible <= 0) return;
    int32_t sink = (int32_t)us_min64(sink_blocks > 1 ? sink_blocks : 1, visible);
    for (int32_t j = 0; j < sink; j++) keep[j] = 1;
    diag_last = (int32_t)us_min64(diag_last, visible - 1);
    for (int32_t j = (int32_t)us_min64(diag_first, diag_last); j <= diag_last; j++) keep[j] = 1;
}

int32_t us_keep_recent(uint8_t *keep, int32_t visible, int32_t min_count)
{
    int32_t kept = 0;
    for (int32_t j = 0; j < visible; j++) kept += keep[j] != 0;
    for (int32_t j = visible - 1; j >= 0 && kept < min_count; j--)
        if (!keep[j]) {
            keep[j] = 1;
            kept++;
        }
    return kept;
}

/* Largest score first; ties by index, so the choice is deterministic. */
static int by_score_desc(const void *x, const void *y)
{
    const us_scored *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (a->index > b->index) - (a->index < b->index);
}

int64_t us_top_by_mass(const float *score, int64_t n, int64_t max_count, float gamma, us_scored *scratch,
                       uint8_t *chosen)
{
    memset(chosen, 0, (size_t)n);
    int64_t m = 0;
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        if (score[i] > 0.0f) {
            scratch[m].score = score[i];
            scratch[m++].index = (int32_t)i;
            total += score[i];
        }
    qsort(scratch, (size_t)m, sizeof *scratch, by_score_desc);
    double target = (double)gamma * total, mass = 0;
    int64_t c = 0;
    for (; c < m && c < max_count; c++) {
        if (gamma < 1.0f && mass >= target) break;
        chosen[scratch[c].index] = 1;
        mass += scratch[c].score;
    }
    return c;
}

us_status us_vs_work_init(us_vs_work *w, const us_geom *g, int block, int64_t n_sample, us_error *err)
{
    memset(w, 0, sizeof *w);
    w->n = us_min64(n_sample, g->nq);
    w->ncols = g->limit[g->nq - 1] + 1;
    w->nk = g->nk;
    w->nkb = us_ceil_div(g->nk, block);
    w->d = g->d;
    w->block = block;
    w->k_head = -1;
    size_t nk = (size_t)g->nk, nd = 2 * nk - 1;
    w->q = malloc((size_t)(w->n * w->d) * sizeof *w->q);
    w->k = malloc(nk * (size_t)w->d * sizeof *w->k);
    w->prob = malloc((size_t)w->n * (size_t)w->ncols * sizeof *w->prob);
    w->vertical = malloc(nk * sizeof *w->vertical);
    w->slash = malloc(nd * sizeof *w->slash);
    w->sorted = malloc(2 * nk * sizeof *w->sorted);
    w->col_chosen = malloc(nk);
    w->diag_chosen = malloc(nd);
    w->first_col = malloc((size_t)w->nkb * sizeof *w->first_col);
    w->diag_prefix = malloc(2 * nk * sizeof *w->diag_prefix);
    w->keep = malloc((size_t)w->nkb);
    if (!w->q || !w->k || !w->prob || !w->vertical || !w->slash || !w->sorted || !w->col_chosen ||
        !w->diag_chosen || !w->first_col || !w->diag_prefix || !w->keep) {
        us_vs_work_free(w);
        return us_error_set(err, US_ERR_NOMEM,
                            "no memory for the attention of %lld sampled queries over %lld keys",
                            (long long)n_sample, (long long)g->nk);
    }
    return US_OK;
}

void us_vs_work_free(us_vs_work *w)
{
    free(w->q), free(w->k), free(w->prob), free(w->vertical), free(w->slash), free(w->sorted);
    free(w->col_chosen), free(w->diag_chosen), free(w->first_col), free(w->diag_prefix), free(w->keep);
    memset(w, 0, sizeof *w);
}

void us_vs_work_scores(us_vs_work *w, const us_attn_args *a, const us_geom *g, int64_t h)
{
    const int64_t n = w->n, d = w->d, nk = w->nk, ncols = w->ncols, i0 = g->nq - n;
    int64_t kvh = h / g->group;
    if (w->k_head != kvh) {
        us_tensor_head_to_f32(&a->k, kvh, 1.0f, w->k);
        w->k_head = kvh;
    }
    for (int64_t r = 0; r < n; r++) us_tensor_row_to_f32(&a->q, h, i0 + r, g->scale * US_LOG2E, w->q + r * d);
    /* prob (n, ncols) = q (n, d) k[0:ncols]^T, in log2 units */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ncols, (int)d, 1.0f, w->q, (int)d, w->k,
                (int)d, 0.0f, w->prob, (int)ncols);
    memset(w->vertical, 0, (size_t)nk * sizeof *w->vertical);
    memset(w->slash, 0, (size_t)(2 * nk - 1) * sizeof *w->slash);
    for (int64_t r = 0; r < n; r++) {
        float *z = w->prob + r * ncols;
        int64_t nv = g->limit[i0 + r] + 1;
        /* base-2 softmax numerators over the visible prefix, vectorised */
        float sum = us_tile_exp2_row(z, (int)nv, us_tile_row_max(z, (int)nv));
        float inv = 1.0f / sum;
        /* offset o = pos - c sits at index o + nk - 1, so key c of this row maps to base - c */
        float *sl = w->slash + (g->q_offset + i0 + r + nk - 1);
        for (int64_t c = 0; c < nv; c++) {
            float pr = z[c] * inv;
            z[c] = pr;
            w->vertical[c] += pr;
            sl[-c] += pr;
        }
        for (int64_t c = nv; c < ncols; c++) z[c] = 0.0f;
    }
}

void us_vs_work_choose(us_vs_work *w, int64_t max_vertical, int64_t max_slash, float gamma)
{
    const int64_t nk = w->nk, nd = 2 * nk - 1, S = w->block;
    us_top_by_mass(w->vertical, nk, max_vertical, gamma, w->sorted, w->col_chosen);
    us_top_by_mass(w->slash, nd, max_slash, gamma, w->sorted, w->diag_chosen);
    for (int64_t j = 0; j < w->nkb; j++) {
        w->first_col[j] = INT64_MAX;
        for (int64_t c = j * S; c < us_min64((j + 1) * S, nk); c++)
            if (w->col_chosen[c]) {
                w->first_col[j] = c;
                break;
            }
    }
    w->diag_prefix[0] = 0;
    for (int64_t x = 0; x < nd; x++) w->diag_prefix[x + 1] = w->diag_prefix[x] + w->diag_chosen[x];
}

void us_vs_work_mark_row(const us_vs_work *w, const us_geom *g, int64_t qblock, uint8_t *keep)
{
    const int64_t S = w->block, nk = w->nk;
    int64_t q0 = qblock * S, q1 = us_min64(q0 + S, g->nq) - 1;
    int64_t p0 = g->q_offset + q0, p1 = g->q_offset + q1, lim = g->limit[q1];
    int32_t visible = us_geom_visible_blocks(g, (int)S, qblock);
    for (int32_t j = 0; j < visible; j++) {
        if (w->first_col[j] <= lim) {
            keep[j] = 1;
            continue;
        }
        /* offsets of the tile's rectangle: [p0 - k1, p1 - k0], indices shifted by nk - 1 */
        int64_t k0 = j * S, k1 = us_min64(k0 + S, nk) - 1;
        int64_t lo = p0 - k1 + nk - 1, hi = p1 - k0 + nk - 1;
        if (w->diag_prefix[hi + 1] > w->diag_prefix[lo]) keep[j] = 1;
    }
}
