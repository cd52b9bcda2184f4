/* selection.c: the kept-block index format (counts + sorted indices) and the shared rule that
 * turns block importance into kept blocks. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

us_status us_selection_create(const us_attn_args *a, int block, int heads_per_row, us_selection **out,
                              us_error *err)
{
    *out = NULL;
    if (block != 64 && block != 128)
        return us_error_set(err, US_ERR_INVALID, "block %d: must be 64 or 128", block);
    us_geom g;
    us_status s = us_geom_init(&g, a, err);
    if (s) return s;
    if (heads_per_row < 1 || g.hq % heads_per_row != 0) {
        us_geom_free(&g);
        return us_error_set(err, US_ERR_INVALID, "heads per selection row %d must divide Hq = %lld",
                            heads_per_row, (long long)g.hq);
    }
    us_selection *sel = calloc(1, sizeof *sel);
    if (!sel) goto nomem;
    sel->block = block;
    sel->heads_per_row = heads_per_row;
    sel->n_heads = (int32_t)(g.hq / heads_per_row);
    sel->n_qblocks = (int32_t)us_ceil_div(g.nq, block);
    sel->n_kblocks = (int32_t)us_ceil_div(g.nk, block);
    sel->nq = g.nq;
    sel->nk = g.nk;
    sel->q_offset = g.q_offset;
    int64_t rows = (int64_t)sel->n_heads * sel->n_qblocks;
    sel->visible = malloc((size_t)sel->n_qblocks * sizeof *sel->visible);
    sel->row_offset = malloc((size_t)rows * sizeof *sel->row_offset);
    sel->counts = calloc((size_t)rows, sizeof *sel->counts);
    if (!sel->visible || !sel->row_offset || !sel->counts) goto nomem;
    int64_t per_head = 0;
    for (int32_t i = 0; i < sel->n_qblocks; i++) {
        sel->visible[i] = us_geom_visible_blocks(&g, block, i);
        per_head += sel->visible[i];
    }
    for (int32_t h = 0; h < sel->n_heads; h++) {
        int64_t off = h * per_head;
        for (int32_t i = 0; i < sel->n_qblocks; i++) {
            sel->row_offset[(int64_t)h * sel->n_qblocks + i] = off;
            off += sel->visible[i];
        }
    }
    sel->indices = malloc((size_t)(per_head * sel->n_heads) * sizeof *sel->indices);
    if (!sel->indices) goto nomem;
    us_geom_free(&g);
    *out = sel;
    return US_OK;
nomem:
    us_geom_free(&g);
    us_selection_free(&sel);
    return us_error_set(err, US_ERR_NOMEM, "no memory for a block selection of %lld x %lld tokens",
                        (long long)a->q.shape[1], (long long)a->k.shape[1]);
}

void us_selection_free(us_selection **sel)
{
    if (!sel || !*sel) return;
    free((*sel)->row_offset);
    free((*sel)->counts);
    free((*sel)->indices);
    free((*sel)->visible);
    free(*sel);
    *sel = NULL;
}

us_status us_selection_dense(const us_attn_args *a, int block, us_selection **out, us_error *err)
{
    us_status s = us_selection_create(a, block, (int)a->q.shape[0], out, err);
    if (s) return s;
    us_selection *sel = *out;
    for (int32_t h = 0; h < sel->n_heads; h++)
        for (int32_t i = 0; i < sel->n_qblocks; i++) {
            int64_t r = (int64_t)h * sel->n_qblocks + i;
            sel->counts[r] = sel->visible[i];
            for (int32_t j = 0; j < sel->visible[i]; j++) sel->indices[sel->row_offset[r] + j] = j;
        }
    us_selection_finish(sel, a);
    return US_OK;
}

/* Visible (query, key) pairs of tile (i, j). */
static double tile_pairs(const us_geom *g, int block, int64_t i, int64_t j)
{
    int64_t q0 = i * block, q1 = us_min64(q0 + block, g->nq);
    int64_t k0 = j * block, k1 = us_min64(k0 + block, g->nk);
    if (g->limit[q0] >= k1 - 1) return (double)(q1 - q0) * (double)(k1 - k0); /* fully visible */
    double n = 0;
    for (int64_t q = q0; q < q1; q++) n += (double)us_max64(0, us_min64(g->limit[q], k1 - 1) - k0 + 1);
    return n;
}

void us_selection_finish(us_selection *sel, const us_attn_args *a)
{
    us_geom g;
    if (us_geom_init(&g, a, NULL)) return;
    double kept = 0, visible = 0, kept_pairs = 0, visible_pairs = 0;
    for (int32_t i = 0; i < sel->n_qblocks; i++) {
        double vis_pairs_i = 0;
        for (int32_t j = 0; j < sel->visible[i]; j++) vis_pairs_i += tile_pairs(&g, sel->block, i, j);
        visible += (double)sel->visible[i] * sel->n_heads;
        visible_pairs += vis_pairs_i * sel->n_heads;
        for (int32_t h = 0; h < sel->n_heads; h++) {
            int64_t r = (int64_t)h * sel->n_qblocks + i;
            kept += sel->counts[r];
            for (int32_t c = 0; c < sel->counts[r]; c++)
                kept_pairs += tile_pairs(&g, sel->block, i, sel->indices[sel->row_offset[r] + c]);
        }
    }
    sel->density = visible > 0 ? kept / visible : 0.0;
    sel->pair_density = visible_pairs > 0 ? kept_pairs / visible_pairs : 0.0;
    us_geom_free(&g);
}

us_status us_selection_check(const us_selection *sel, const us_attn_args *a, int require_sink_diag,
                             us_error *err)
{
    us_geom g;
    us_status s = us_geom_init(&g, a, err);
    if (s) return s;
    for (int32_t h = 0; h < sel->n_heads && !s; h++)
        for (int32_t i = 0; i < sel->n_qblocks && !s; i++) {
            int64_t r = (int64_t)h * sel->n_qblocks + i;
            const int32_t *idx = sel->indices + sel->row_offset[r];
            int32_t n = sel->counts[r], vis = us_geom_visible_blocks(&g, sel->block, i);
            if (n < 0 || n > vis) {
                s = us_error_set(err, US_ERR_INVALID, "row (%d, %d): %d kept of %d visible", h, i, n, vis);
                break;
            }
            for (int32_t c = 0; c < n && !s; c++) {
                if (idx[c] < 0 || idx[c] >= vis)
                    s = us_error_set(err, US_ERR_INVALID, "row (%d, %d): block %d is not visible", h, i, idx[c]);
                else if (c > 0 && idx[c] <= idx[c - 1])
                    s = us_error_set(err, US_ERR_INVALID, "row (%d, %d): indices not sorted and unique", h, i);
            }
            if (s || !require_sink_diag) continue;
            int32_t d0, d1;
            us_geom_diagonal_blocks(&g, sel->block, i, &d0, &d1);
            if (n == 0 || idx[0] != 0)
                s = us_error_set(err, US_ERR_INVALID, "row (%d, %d): sink block 0 not kept", h, i);
            bool has_diag = false;
            for (int32_t c = 0; c < n; c++) has_diag |= idx[c] == us_min64(d1, vis - 1);
            if (!s && !has_diag)
                s = us_error_set(err, US_ERR_INVALID, "row (%d, %d): diagonal block %d not kept", h, i, d1);
        }
    us_geom_free(&g);
    return s;
}

/* Heap sort of idx[0..n) by importance, largest first. */
static void sift_down(int32_t *idx, const float *imp, int64_t root, int64_t n)
{
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n) return;
        /* min-heap on importance so that the sorted array ends largest first */
        if (child + 1 < n && imp[idx[child + 1]] < imp[idx[child]]) child++;
        if (imp[idx[root]] <= imp[idx[child]]) return;
        int32_t t = idx[root];
        idx[root] = idx[child];
        idx[child] = t;
        root = child;
    }
}

static void sort_by_importance_desc(int32_t *idx, const float *imp, int64_t n)
{
    for (int64_t i = n / 2 - 1; i >= 0; i--) sift_down(idx, imp, i, n);
    for (int64_t end = n - 1; end > 0; end--) {
        int32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(idx, imp, 0, end);
    }
}

void us_mark_row_by_mass(const float *importance, int32_t visible, int32_t diag_first, int32_t diag_last, float tau,
                         const us_unisparse_params *p, uint8_t *keep, int32_t *cand)
{
    if (tau >= 1.0f) tau = INFINITY; /* "keep all": an fp32 running sum may never reach exactly 1 */
    int32_t *mine = cand + visible; /* this call's own marks, so that floors count only them */
    memset(mine, 0, (size_t)visible * sizeof *mine);
    diag_last = (int32_t)us_min64(diag_last, visible - 1);
    diag_first = (int32_t)us_min64(diag_first, diag_last);
    int32_t sink = (int32_t)us_min64(p->sink_blocks, visible);
    for (int32_t j = 0; j < sink; j++) mine[j] = 1;
    for (int32_t j = (int32_t)us_max64(0, diag_first - p->local_blocks); j <= diag_last; j++) mine[j] = 1;
    double mass = 0;
    int32_t kept = 0, n_cand = 0;
    for (int32_t j = 0; j < visible; j++) {
        if (mine[j]) {
            mass += importance[j];
            kept++;
        } else {
            cand[n_cand++] = j;
        }
    }
    sort_by_importance_desc(cand, importance, n_cand);
    int32_t ceiling = p->max_blocks > 0 ? p->max_blocks : visible;
    for (int32_t c = 0; c < n_cand && kept < ceiling; c++) {
        if (mass >= tau && kept >= p->min_blocks) break;
        mine[cand[c]] = 1;
        mass += importance[cand[c]];
        kept++;
    }
    for (int32_t j = 0; j < visible; j++) keep[j] |= (uint8_t)mine[j];
}

void us_selection_set_row(us_selection *sel, int64_t row, const uint8_t *keep, int32_t visible)
{
    int32_t *out = sel->indices + sel->row_offset[row];
    int32_t n = 0;
    for (int32_t j = 0; j < visible; j++)
        if (keep[j]) out[n++] = j;
    sel->counts[row] = n;
}

void us_select_row_by_mass(us_selection *sel, int64_t row, const float *importance, int32_t visible,
                           int32_t diag_first, int32_t diag_last, float tau, const us_unisparse_params *p,
                           int32_t *scratch)
{
    uint8_t *keep = (uint8_t *)scratch; /* [visible] flags in the first ints, then [2 * visible] for marking */
    memset(keep, 0, (size_t)visible);
    us_mark_row_by_mass(importance, visible, diag_first, diag_last, tau, p, keep, scratch + visible);
    us_selection_set_row(sel, row, keep, visible);
}

void us_selection_keep_all_from(us_selection *sel, const us_attn_args *a, int64_t pos)
{
    for (int32_t i = 0; i < sel->n_qblocks; i++) {
        const int64_t last = sel->q_offset + us_min64((int64_t)(i + 1) * sel->block, sel->nq) - 1;
        if (last < pos) continue;
        for (int32_t h = 0; h < sel->n_heads; h++) {
            const int64_t r = (int64_t)h * sel->n_qblocks + i;
            sel->counts[r] = sel->visible[i];
            for (int32_t j = 0; j < sel->visible[i]; j++) sel->indices[sel->row_offset[r] + j] = j;
        }
    }
    us_selection_finish(sel, a);
}
