/* select_flexprefill.c: the FlexPrefill baseline (per-head choice of pattern).
 *
 * Per query head, Q^ = the last min(flex_last_q, Nq) queries, with their exact (mask-aware)
 * attention. Two distributions over the key blocks visible to the last query:
 *   a^ = that exact attention summed per key block, normalised;
 *   a- = softmax(mean(Q^) . blockmean(K)^T * scale), one estimate from pooled tokens.
 * When d = sqrt(JS(a-, a^)) (natural log) < flex_delta the pooled estimate is trusted and the head
 * runs query-aware: every query block's block-mean query against the block-mean keys, softmax,
 * and the shared cumulative rule keeps blocks covering flex_gamma (us_pooled_block_importance with
 * cq = ck = block, then us_select_row_by_mass). Otherwise the head runs vertical-slash: the
 * columns and the diagonals of Q^'s attention, each set chosen as the fewest heaviest entries
 * whose mass reaches flex_gamma, rounded to blocks as in MInference (last_queries.c).
 *
 * Readings of the paper chosen here:
 * - Vertical and slash scores are chosen per token (column, diagonal offset) and then rounded to
 *   blocks; the reference code pools them to blocks first. Per token is the MInference rounding,
 *   so the two baselines differ only in how many they keep.
 * - The minimum budget is a floor on kept blocks per row, ceil(flex_min_budget / block) (and at
 *   least min_blocks): query-aware rows fill it with the highest-importance remaining blocks
 *   through the shared rule; vertical-slash rows, which have no per-block score, with the most
 *   recent visible blocks (the local diagonals the slash pattern would add next).
 * - Sink (at least one block) and diagonal blocks are kept in both modes. gamma = 1 keeps every
 *   visible block in the query-aware mode and every column and diagonal with mass in the other.
 * - local_blocks and max_blocks act through the shared rule, so in the query-aware mode only.
 * - JS is taken over the key blocks visible to the last sampled query; a- masks at block level
 *   (a block counts when its first key is visible), a^ at token level. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* dst (d) = mean of rows [t0, t1) of head h of t, times mul. */
static void mean_rows(const us_tensor *t, int64_t h, int64_t t0, int64_t t1, float mul, float *row,
                      float *dst)
{
    int64_t d = t->shape[2];
    memset(dst, 0, (size_t)d * sizeof *dst);
    for (int64_t j = t0; j < t1; j++) {
        us_tensor_row_to_f32(t, h, j, 1.0f, row);
        for (int64_t c = 0; c < d; c++) dst[c] += row[c];
    }
    float w = mul / (float)(t1 - t0);
    for (int64_t c = 0; c < d; c++) dst[c] *= w;
}

/* sqrt of the Jensen-Shannon divergence (natural log) of two distributions over n entries. */
static double js_distance(const float *x, const float *y, int64_t n)
{
    double js = 0;
    for (int64_t j = 0; j < n; j++) {
        double m = 0.5 * ((double)x[j] + (double)y[j]);
        if (x[j] > 0) js += 0.5 * x[j] * log(x[j] / m);
        if (y[j] > 0) js += 0.5 * y[j] * log(y[j] / m);
    }
    return sqrt(js > 0 ? js : 0);
}

/* Per-thread scratch besides the vertical-slash workspace. */
typedef struct {
    float *qc;     /* [nqb, d] block-mean queries of one head, times scale * log2(e) */
    float *row;    /* [d] */
    float *a_hat;  /* [nkb] */
    float *a_bar;  /* [nkb] */
    float *z;      /* [nkb] scores of one pooled row */
    int32_t *isc;  /* [3 nkb] */
} flex_scratch;

/* Whether head h's pooled estimate matches its sampled attention (d < delta). */
static bool query_aware(const us_vs_work *w, flex_scratch *f, const float *kb, const us_geom *g, int S,
                        float delta)
{
    const int64_t d = g->d, nvb = us_ceil_div(w->ncols, S);
    for (int64_t j = 0; j < nvb; j++) {
        double acc = 0;
        for (int64_t c = j * S; c < us_min64((j + 1) * S, w->ncols); c++) acc += w->vertical[c];
        f->a_hat[j] = (float)(acc / (double)w->n);
    }
    /* mean of the sampled queries (already times scale * log2 e) against the block-mean keys */
    memset(f->row, 0, (size_t)d * sizeof *f->row);
    for (int64_t r = 0; r < w->n; r++)
        for (int64_t c = 0; c < d; c++) f->row[c] += w->q[r * d + c];
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t j = 0; j < nvb; j++) {
        float acc = 0.0f;
        for (int64_t c = 0; c < d; c++) acc += f->row[c] * kb[j * d + c];
        f->a_bar[j] = acc / (float)w->n;
        mx = f->a_bar[j] > mx ? f->a_bar[j] : mx;
    }
    for (int64_t j = 0; j < nvb; j++) sum += f->a_bar[j] = us_exp2f(f->a_bar[j] - mx);
    for (int64_t j = 0; j < nvb; j++) f->a_bar[j] /= sum;
    return js_distance(f->a_bar, f->a_hat, nvb) < (double)delta;
}

us_status us_select_flexprefill(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                                us_selection **out, us_error *err)
{
    const int S = p->block;
    const int64_t d = g->d;
    us_status s = us_selection_create(a, S, 1, out, err);
    if (s) return s;
    us_selection *sel = *out;
    const int64_t nqb = sel->n_qblocks, nkb = sel->n_kblocks;
    int nt = omp_get_max_threads();
    us_vs_work *w = calloc((size_t)nt, sizeof *w);
    flex_scratch *f = calloc((size_t)nt, sizeof *f);
    float *kb = malloc((size_t)(g->hkv * nkb * d) * sizeof *kb); /* block-mean keys [hkv, nkb, d] */
    if (!w || !f || !kb) s = us_error_set(err, US_ERR_NOMEM, "no memory for FlexPrefill workspaces");
    for (int t = 0; t < nt && !s; t++) {
        s = us_vs_work_init(&w[t], g, S, p->flex_last_q, err);
        f[t].qc = malloc((size_t)(nqb * d) * sizeof *f[t].qc);
        f[t].row = malloc((size_t)d * sizeof *f[t].row);
        f[t].a_hat = malloc((size_t)nkb * sizeof *f[t].a_hat);
        f[t].a_bar = malloc((size_t)nkb * sizeof *f[t].a_bar);
        f[t].z = malloc((size_t)nkb * sizeof *f[t].z);
        f[t].isc = malloc((size_t)(3 * nkb) * sizeof *f[t].isc);
        if (!s && (!f[t].qc || !f[t].row || !f[t].a_hat || !f[t].a_bar || !f[t].z || !f[t].isc))
            s = us_error_set(err, US_ERR_NOMEM, "no memory for FlexPrefill workspaces");
    }
    if (!s) {
        /* the row floor and the forced sink of both modes; gamma = 1 means every visible block */
        us_unisparse_params pp = *p;
        pp.sink_blocks = p->sink_blocks > 1 ? p->sink_blocks : 1;
        pp.min_blocks = (int)us_max64(p->min_blocks, us_ceil_div(p->flex_min_budget, S));
        const float tau = p->flex_gamma >= 1.0f ? INFINITY : p->flex_gamma;
        const float qmul = g->scale * US_LOG2E;
        us_pooled pl = {1, nqb, nkb, d, S, S, NULL, NULL, NULL};
#pragma omp parallel num_threads(nt)
        {
            int tid = omp_get_thread_num();
            us_vs_work *wt = &w[tid];
            flex_scratch *ft = &f[tid];
#pragma omp for schedule(static)
            for (int64_t x = 0; x < g->hkv * nkb; x++) {
                int64_t t0 = (x % nkb) * S;
                mean_rows(&a->k, x / nkb, t0, us_min64(t0 + S, g->nk), 1.0f, ft->row, kb + x * d);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t h = 0; h < g->hq; h++) {
                const float *kbh = kb + (h / g->group) * nkb * d;
                us_vs_work_scores(wt, a, g, h);
                bool qa = query_aware(wt, ft, kbh, g, S, p->flex_delta);
                us_pooled plh = pl;
                if (qa) {
                    for (int64_t i = 0; i < nqb; i++) {
                        int64_t t1 = us_min64((i + 1) * S, g->nq);
                        mean_rows(&a->q, h, i * S, t1, qmul, ft->row, ft->qc + i * d);
                    }
                    plh.qc = ft->qc;
                    plh.kc = kbh;
                } else {
                    us_vs_work_choose(wt, INT64_MAX, INT64_MAX, p->flex_gamma);
                }
                for (int64_t i = 0; i < nqb; i++) {
                    int32_t vis = sel->visible[i], d0, d1;
                    int64_t r = h * nqb + i;
                    us_geom_diagonal_blocks(g, S, i, &d0, &d1);
                    if (qa) { /* a_hat, no longer needed, holds the row's block importance */
                        us_pooled_block_importance(&plh, g, S, 0, i, ft->z, ft->a_hat, NULL);
                        us_select_row_by_mass(sel, r, ft->a_hat, vis, d0, d1, tau, &pp, ft->isc);
                        continue;
                    }
                    memset(wt->keep, 0, (size_t)vis);
                    us_keep_sink_diagonal(wt->keep, vis, d0, d1, pp.sink_blocks);
                    us_vs_work_mark_row(wt, g, i, wt->keep);
                    us_keep_recent(wt->keep, vis, pp.min_blocks);
                    us_selection_set_row(sel, r, wt->keep, vis);
                }
            }
        }
    }
    for (int t = 0; t < nt && w && f; t++) {
        us_vs_work_free(&w[t]);
        free(f[t].qc), free(f[t].row), free(f[t].a_hat), free(f[t].a_bar), free(f[t].z), free(f[t].isc);
    }
    free(w), free(f), free(kb);
    if (s) us_selection_free(out);
    return s;
}
