/* select_unisparse.c: the UniSparse selector (arXiv 2512.14082).
 *
 * Multi-granularity compression: queries are average-pooled over cq tokens and ch query heads,
 * keys over ck tokens (and over the KV heads of those query heads when ch spans several groups),
 * always inside one block, a ragged tail averaged over its valid tokens. The composite tokens are
 * scored globally (every visible composite key), the softmax mass gives block importance, and the
 * shared cumulative rule keeps sink + diagonal and then the heaviest blocks up to tau. With
 * row_union, the rule runs on each composite query row's own mass and the block row keeps the
 * union, so a few queries whose needs differ from their block's average keep what they need. */
#include "internal.h"

#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* dst[c] = mean over heads [h0, h0+nh) and tokens [t0, t1) of t, times mul. row: d floats. */
static void pool(const us_tensor *t, int64_t h0, int64_t nh, int64_t t0, int64_t t1, float mul, float *row,
                 float *dst)
{
    int64_t d = t->shape[2];
    memset(dst, 0, (size_t)d * sizeof *dst);
    for (int64_t h = h0; h < h0 + nh; h++)
        for (int64_t j = t0; j < t1; j++) {
            us_tensor_row_to_f32(t, h, j, 1.0f, row);
            for (int64_t c = 0; c < d; c++) dst[c] += row[c];
        }
    float w = mul / (float)(nh * (t1 - t0));
    for (int64_t c = 0; c < d; c++) dst[c] *= w;
}

/* Scores of composite rows held at once (floats): 64 MiB, whatever the call's length. */
enum { kScoreBudget = 16 << 20 };

/* The query blocks [i0, end) scored by one product. One product per block would read the keys,
 * the memory-bound operand at long context, once per block; a group reads them once. A group spans
 * at most an eighth of the keys its first block sees (its earlier blocks are scored against the
 * keys its last one sees, so little work is spent on masked scores), and at most max_blocks. */
static int64_t score_group_end(const us_geom *g, int S, int64_t i0, int64_t nqb, int64_t max_blocks)
{
    int64_t first_tok = us_min64(i0 * S, g->nq - 1);
    int64_t span = (g->limit[first_tok] + 1) / 8 / S;
    return us_min64(nqb, i0 + us_max64(1, us_min64(span, max_blocks)));
}

us_status us_select_unisparse(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                              us_selection **out, us_error *err)
{
    const int S = p->block;
    const int64_t ch = p->ch > 0 ? p->ch : g->group, ne = g->hq / ch, d = g->d;
    /* KV heads behind estimation head e: one when ch <= group, else ch / group of them. */
    const int64_t kv_per_e = ch > g->group ? ch / g->group : 1;
    /* Estimation heads that score against the same keys (those of one KV head when ch divides the
     * group) are scored together: at long context reading the keys is what the product costs. */
    const int64_t share = ch < g->group ? g->group / ch : 1, nsrc = ne / share;
    us_status s = us_selection_create(a, S, (int)ch, out, err);
    if (s) return s;
    us_selection *sel = *out;
    us_pooled pl = {ne, us_ceil_div(g->nq, p->cq), 0, d, p->cq, p->ck, NULL, NULL, NULL};
    /* composite keys never straddle blocks: S % ck == 0, so pooling by ck from token 0 suffices */
    pl.nkc = us_ceil_div(g->nk, p->ck);
    /* Token-level keys of one KV head each, stored f32 with packed rows (a KV cache): scored in place.
     * Copying them would cost O(Nk d) per call, which dominates chunked prefill's many short calls. */
    const bool keys_in_place = p->ck == 1 && kv_per_e == 1 && a->k.dtype == US_F32 && a->k.stride[2] == 1 &&
                               a->k.stride[1] == d;
    const float **khead = malloc((size_t)ne * sizeof *khead);
    float *qc = malloc((size_t)(ne * pl.nqc * d) * sizeof *qc);
    float *kc = keys_in_place ? malloc(sizeof *kc) : malloc((size_t)(nsrc * pl.nkc * d) * sizeof *kc);
    int nt = omp_get_max_threads();
    const int64_t per_block = S / p->cq, nkb = sel->n_kblocks, nqb = sel->n_qblocks;
    /* The scores of one group of query blocks (all heads scored together), bounded so that a long
     * call still fits: at least one block's rows. */
    const int64_t block_floats = share * per_block * pl.nkc;
    const int64_t max_group = us_max64(1, us_min64(nqb, kScoreBudget / us_max64(1, block_floats)));
    /* per thread: pooling's row, then block importance, per-row masses when the row-union rule needs
     * them, and the marking scratch */
    size_t work_elems = (size_t)d + (size_t)(share * nkb) + (p->row_union ? (size_t)(share * per_block * nkb) : 0);
    float *work = malloc((size_t)nt * work_elems * sizeof *work);
    float *z = malloc((size_t)(max_group * block_floats) * sizeof *z + sizeof *z);
    float *qbuf = share > 1 ? malloc((size_t)(max_group * share * per_block * d) * sizeof *qbuf) : NULL;
    int32_t *iscratch = malloc((size_t)nt * 4 * (size_t)nkb * sizeof *iscratch);
    if (!qc || !kc || !work || !z || (share > 1 && !qbuf) || !iscratch || !khead) {
        free(qc), free(kc), free(work), free(z), free(qbuf), free(iscratch), free(khead);
        us_selection_free(out);
        return us_error_set(err, US_ERR_NOMEM, "no memory for UniSparse composite tokens");
    }
    for (int64_t e = 0; e < ne; e++)
        khead[e] = keys_in_place ? (const float *)a->k.data + ((e * ch) / g->group) * a->k.stride[0]
                                 : kc + (e / share) * pl.nkc * d;
    pl.khead = khead;
    pl.qc = qc;
    pl.kc = kc;
    const float qmul = g->scale * US_LOG2E;
#pragma omp parallel num_threads(nt)
    {
        float *row = work + (size_t)omp_get_thread_num() * work_elems;
#pragma omp for schedule(static)
        for (int64_t x = 0; x < ne * pl.nqc; x++) {
            int64_t e = x / pl.nqc, u = x % pl.nqc;
            pool(&a->q, e * ch, ch, u * p->cq, us_min64((u + 1) * p->cq, g->nq), qmul, row, qc + x * d);
        }
#pragma omp for schedule(static)
        for (int64_t x = 0; x < (keys_in_place ? 0 : nsrc * pl.nkc); x++) {
            int64_t src = x / pl.nkc, t = x % pl.nkc;
            int64_t kv0 = (src * share * ch) / g->group;
            pool(&a->k, kv0, kv_per_e, t * p->ck, us_min64((t + 1) * p->ck, g->nk), 1.0f, row, kc + x * d);
        }
    }
    for (int64_t src = 0; src < nsrc; src++) {
        const int64_t e0 = src * share;
        for (int64_t i0 = 0, i1; i0 < nqb; i0 = i1) {
            i1 = score_group_end(g, S, i0, nqb, max_group);
            /* one product for the group, outside any parallel region so that BLAS uses every thread */
            const int64_t ldz = us_pooled_scores(&pl, g, S, e0, share, i0, i1, qbuf, z);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int64_t i = i1 - 1; i >= i0; i--) {
                const int tid = omp_get_thread_num();
                float *imp = work + (size_t)tid * work_elems + d;
                float *row_mass = p->row_union ? imp + share * nkb : NULL;
                int32_t *isc = iscratch + (size_t)tid * 4 * (size_t)nkb;
                int nr = us_pooled_block_mass(&pl, g, S, share, i0, i1, i, z, ldz, imp, row_mass);
                int32_t d0, d1, vis = sel->visible[i];
                us_geom_diagonal_blocks(g, S, i, &d0, &d1);
                for (int64_t hh = 0; hh < share; hh++) {
                    int64_t srow = (e0 + hh) * nqb + i;
                    const float *himp = imp + hh * nkb;
                    if (!p->row_union) {
                        us_select_row_by_mass(sel, srow, himp, vis, d0, d1, p->tau, p, isc);
                        continue;
                    }
                    /* row union: every composite query row keeps the blocks covering tau of its own mass */
                    uint8_t *keep = (uint8_t *)(isc + nkb);
                    memset(keep, 0, (size_t)vis);
                    const float *hmass = row_mass + (size_t)hh * (size_t)nr * nkb;
                    for (int r = 0; r < nr; r++)
                        us_mark_row_by_mass(hmass + (size_t)r * nkb, vis, d0, d1, p->tau, p, keep, isc + 2 * nkb);
                    us_selection_set_row(sel, srow, keep, vis);
                }
            }
        }
    }
    free(qc), free(kc), free(work), free(z), free(qbuf), free(iscratch), free(khead);
    return US_OK;
}
