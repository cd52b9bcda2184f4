/* select_minference.c: the MInference vertical-slash baseline.
 *
 * Per query head, the exact attention of the last mi_last_q queries (mask-aware) gives a summed
 * probability per key column and per diagonal offset pos(query) - key; the top mi_vertical
 * columns and top mi_slash offsets (among those with any mass) are kept, rounded to blocks: a
 * visible block is kept when it holds a chosen column visible to the query block or a chosen
 * diagonal crosses it (last_queries.c). Sink and diagonal blocks are always kept; min_blocks is
 * honoured by adding the most recent blocks (local_blocks and max_blocks are not used).
 *
 * As in MInference's reference code, the first 30 columns and the 100 most local diagonals
 * (offsets 0 .. 99) are always chosen and count against the two budgets; the columns fall in the
 * sink block, the diagonals keep the one or two key blocks before the diagonal. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { FORCED_COLUMNS = 30, FORCED_DIAGONALS = 100 };

/* Puts the always-chosen columns and diagonals ahead of every measured score. */
static void force_sink_and_local(us_vs_work *w)
{
    const float big = 1e30f;
    for (int64_t c = 0; c < us_min64(FORCED_COLUMNS, w->ncols); c++) w->vertical[c] = big;
    for (int64_t o = 0; o < us_min64(FORCED_DIAGONALS, w->nk); o++) w->slash[w->nk - 1 + o] = big;
}

us_status us_select_minference(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                               us_selection **out, us_error *err)
{
    const int S = p->block;
    us_status s = us_selection_create(a, S, 1, out, err);
    if (s) return s;
    us_selection *sel = *out;
    int nt = (int)us_min64(omp_get_max_threads(), g->hq);
    us_vs_work *w = calloc((size_t)nt, sizeof *w);
    if (!w) s = us_error_set(err, US_ERR_NOMEM, "no memory for MInference workspaces");
    for (int t = 0; t < nt && !s; t++) s = us_vs_work_init(&w[t], g, S, p->mi_last_q, err);
    if (!s) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t h = 0; h < g->hq; h++) {
            us_vs_work *wt = &w[omp_get_thread_num()];
            us_vs_work_scores(wt, a, g, h);
            force_sink_and_local(wt);
            us_vs_work_choose(wt, p->mi_vertical, p->mi_slash, 1.0f);
            for (int32_t i = 0; i < sel->n_qblocks; i++) {
                int32_t vis = sel->visible[i], d0, d1;
                us_geom_diagonal_blocks(g, S, i, &d0, &d1);
                memset(wt->keep, 0, (size_t)vis);
                us_keep_sink_diagonal(wt->keep, vis, d0, d1, p->sink_blocks);
                us_vs_work_mark_row(wt, g, i, wt->keep);
                us_keep_recent(wt->keep, vis, p->min_blocks);
                us_selection_set_row(sel, h * sel->n_qblocks + i, wt->keep, vis);
            }
        }
    }
    for (int t = 0; w && t < nt; t++) us_vs_work_free(&w[t]);
    free(w);
    if (s) us_selection_free(out);
    return s;
}
