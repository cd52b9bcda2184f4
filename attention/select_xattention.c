/* select_xattention.c: the XAttention baseline (antidiagonal scoring).
 *
 * With stride s, the antidiagonal score of query group u and key group t,
 *   score(u, t) = sum_{m=0}^{s-1} q_{u*s+s-1-m} . k_{t*s+m},
 * is one dot product of concatenated vectors: the group's queries in reverse order against the
 * group's keys in order (dim s*d, missing tail tokens as zeros). So the composite tokens are those
 * concatenations and the shared pooled-score machinery does the rest: softmax with scale
 * 1/(sqrt(d) s) over every visible composite key, mass summed per key block, and the cumulative
 * rule keeping sink + diagonal and the heaviest blocks up to tau = xattn_tau (not UniSparse's tau,
 * whose default differs). tau = 1 keeps every visible block (the cumulative sum is not trusted to
 * reach 1.0 exactly in fp32).
 *
 * Memory: one query head's and one KV head's concatenations at a time (2 * N * d floats); the
 * heads are visited in order so that a KV head's keys are built once for its query group. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* dst (s * d) = rows [u*s, u*s+s) of head h of t, in reverse order when reverse, times mul;
 * rows past n are zeros. */
static void concat_group(const us_tensor *t, int64_t h, int64_t u, int s, bool reverse, int64_t n, float mul,
                         float *dst)
{
    int64_t d = t->shape[2];
    for (int m = 0; m < s; m++) {
        int64_t j = u * s + (reverse ? s - 1 - m : m);
        if (j < n)
            us_tensor_row_to_f32(t, h, j, mul, dst + m * d);
        else
            memset(dst + m * d, 0, (size_t)d * sizeof *dst);
    }
}

us_status us_select_xattention(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                               us_selection **out, us_error *err)
{
    const int S = p->block, st = p->xattn_stride;
    us_status s = us_selection_create(a, S, 1, out, err);
    if (s) return s;
    us_selection *sel = *out;
    us_pooled pl = {1, us_ceil_div(g->nq, st), us_ceil_div(g->nk, st), st * g->d, st, st, NULL, NULL, NULL};
    float *qc = malloc((size_t)(pl.nqc * pl.dim) * sizeof *qc);
    float *kc = malloc((size_t)(pl.nkc * pl.dim) * sizeof *kc);
    int nt = omp_get_max_threads();
    size_t work_elems = (size_t)(S / st) * (size_t)pl.nkc + (size_t)sel->n_kblocks;
    float *work = malloc((size_t)nt * work_elems * sizeof *work);
    int32_t *iscratch = malloc((size_t)nt * 3 * (size_t)sel->n_kblocks * sizeof *iscratch);
    if (!qc || !kc || !work || !iscratch) {
        free(qc), free(kc), free(work), free(iscratch);
        us_selection_free(out);
        return us_error_set(err, US_ERR_NOMEM, "no memory for XAttention antidiagonal tokens");
    }
    pl.qc = qc;
    pl.kc = kc;
    us_unisparse_params pp = *p;
    pp.sink_blocks = p->sink_blocks > 1 ? p->sink_blocks : 1;
    const float tau = p->xattn_tau >= 1.0f ? INFINITY : p->xattn_tau;
    const float qmul = g->scale / (float)st * US_LOG2E;
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        float *z = work + (size_t)tid * work_elems;
        float *imp = z + (size_t)(S / st) * (size_t)pl.nkc;
        int32_t *isc = iscratch + (size_t)tid * 3 * (size_t)sel->n_kblocks;
        for (int64_t h = 0; h < g->hq; h++) {
            if (h % g->group == 0) {
#pragma omp for schedule(static)
                for (int64_t t = 0; t < pl.nkc; t++)
                    concat_group(&a->k, h / g->group, t, st, false, g->nk, 1.0f, kc + t * pl.dim);
            }
#pragma omp for schedule(static)
            for (int64_t u = 0; u < pl.nqc; u++)
                concat_group(&a->q, h, u, st, true, g->nq, qmul, qc + u * pl.dim);
#pragma omp for schedule(dynamic, 1)
            for (int64_t x = 0; x < sel->n_qblocks; x++) {
                int64_t i = sel->n_qblocks - 1 - x; /* the longest rows first */
                us_pooled_block_importance(&pl, g, S, 0, i, z, imp, NULL);
                int32_t d0, d1;
                us_geom_diagonal_blocks(g, S, i, &d0, &d1);
                int64_t r = h * sel->n_qblocks + i;
                us_select_row_by_mass(sel, r, imp, sel->visible[i], d0, d1, tau, &pp, isc);
            }
        }
    }
    free(qc), free(kc), free(work), free(iscratch);
    return US_OK;
}
