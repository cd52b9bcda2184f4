/* sparse_cpu.c: exact block-sparse attention on the CPU.
 *
 * For each (query head, query block) the kept key blocks of its selection row are visited in
 * order; each S x S tile is two register-blocked products (scores = Q K^T, acc += P V, in
 * tile_kernels) around an online softmax in fp32 (base 2: queries are pre-multiplied by
 * scale * log2 e). The mask is a visible key prefix per query, so masking a tile is just a per-row
 * valid length. K is converted once per call to f32 and transposed per block (the layout the
 * score product streams), V to f32 rows; work items are spread over OpenMP threads. */
#include "internal.h"
#include "tile_kernels.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int g_threads = 0;

void us_set_num_threads(int n) { g_threads = n > 0 ? n : 0; }

static int threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

/* Per-thread scratch for one work item. */
typedef struct {
    float *q;     /* [S, d] query rows, scaled */
    float *s;     /* [S, S] scores, then probabilities */
    float *acc;   /* [S, d] unnormalised output */
    float *m, *l; /* [S] running max (log2 units) and sum */
} tile_scratch;

/* One online-softmax step over a scores tile: rows [0, mq), keys [0, kn) of which row t sees the
 * first valid[t]. Returns nothing; updates m, l, rescales acc and turns s into probabilities. */
static void softmax_step(tile_scratch *w, int64_t mq, int64_t kn, int64_t ld, int64_t d,
                         const int64_t *valid)
{
    for (int64_t t = 0; t < mq; t++) {
        float *srow = w->s + t * ld;
        int64_t nv = valid[t];
        if (nv <= 0) {
            memset(srow, 0, (size_t)kn * sizeof *srow);
            continue;
        }
        float mx = us_tile_row_max(srow, (int)nv);
        float m_old = w->m[t], m_new = mx > m_old ? mx : m_old;
        float sum = us_tile_exp2_row(srow, (int)nv, m_new);
        for (int64_t c = nv; c < kn; c++) srow[c] = 0.0f;
        if (m_old != m_new) {
            float alpha = m_old == -INFINITY ? 0.0f : us_exp2f(m_old - m_new);
            float *arow = w->acc + t * d;
#pragma omp simd
            for (int64_t c = 0; c < d; c++) arow[c] *= alpha;
            w->l[t] *= alpha;
        }
        w->m[t] = m_new;
        w->l[t] += sum;
    }
}

static void store_row(const us_tensor *o, int64_t h, int64_t q, const float *src, float inv, int64_t d)
{
    int64_t base = h * o->stride[0] + q * o->stride[1];
    switch (o->dtype) {
    case US_F32: {
        float *dst = (float *)o->data + base;
        for (int64_t c = 0; c < d; c++) dst[c] = src[c] * inv;
        break;
    }
    case US_F16: {
        uint16_t *dst = (uint16_t *)o->data + base;
        for (int64_t c = 0; c < d; c++) dst[c] = us_f32_to_f16(src[c] * inv);
        break;
    }
    case US_BF16: {
        uint16_t *dst = (uint16_t *)o->data + base;
        for (int64_t c = 0; c < d; c++) dst[c] = us_f32_to_bf16(src[c] * inv);
        break;
    }
    }
}

us_status us_attention_sparse(const us_attn_args *a, const us_selection *sel, us_error *err)
{
    us_geom g;
    us_status st = us_geom_init(&g, a, err);
    if (st) return st;
    if (!sel || sel->nq != g.nq || sel->nk != g.nk || sel->q_offset != g.q_offset ||
        (int64_t)sel->n_heads * sel->heads_per_row != g.hq) {
        us_geom_free(&g);
        return us_error_set(err, US_ERR_INVALID, "selection geometry does not match the attention arguments");
    }
    const int64_t S = sel->block, d = g.d, nq = g.nq, nk = g.nk;
    const int64_t nqb = sel->n_qblocks, nkb = sel->n_kblocks;
    /* K^T per block [hkv, nkb, d, S] and V [hkv, nkb * S, d] in f32, the ragged tail zero. */
    size_t kv_elems = (size_t)(g.hkv * nkb * S * d);
    float *kf = malloc(kv_elems * sizeof *kf), *vf = malloc(kv_elems * sizeof *vf);
    int nt = threads();
    size_t per_thread = (size_t)(2 * S * d + S * S + 2 * S + d);
    float *scratch = malloc((size_t)nt * per_thread * sizeof *scratch);
    int64_t *valid_all = malloc((size_t)nt * (size_t)S * sizeof *valid_all);
    if (!kf || !vf || !scratch || !valid_all) {
        free(kf), free(vf), free(scratch), free(valid_all);
        us_geom_free(&g);
        return us_error_set(err, US_ERR_NOMEM, "no memory for f32 copies of K and V (%zu MiB)",
                            kv_elems * 8 >> 20);
    }
    const float qmul = g.scale * US_LOG2E;
    /* Only the key blocks some row keeps are converted: at long context with a short call (chunked
     * prefill) the conversion is a per-call cost that would otherwise not shrink with the density. */
    uint8_t *needed = calloc((size_t)(g.hkv * nkb), 1);
    if (!needed) {
        free(kf), free(vf), free(scratch), free(valid_all);
        us_geom_free(&g);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the kept-block map");
    }
    for (int64_t h = 0; h < g.hq; h++)
        for (int64_t i = 0; i < nqb; i++) {
            int64_t row = (h / sel->heads_per_row) * nqb + i, kvh = h / g.group;
            const int32_t *idx = sel->indices + sel->row_offset[row];
            for (int32_t c = 0; c < sel->counts[row]; c++) needed[kvh * nkb + idx[c]] = 1;
        }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t x = 0; x < g.hkv * nkb; x++) {
        if (!needed[x]) continue;
        int64_t h = x / nkb, j = x % nkb, k0 = j * S, kn = us_min64(S, nk - k0);
        float *kt = kf + (size_t)(x * S * d), *vb = vf + (size_t)(x * S * d);
        float row[1024];
        memset(kt, 0, (size_t)(S * d) * sizeof *kt);
        for (int64_t t = 0; t < kn; t++) {
            us_tensor_row_to_f32(&a->k, h, k0 + t, 1.0f, row);
            for (int64_t c = 0; c < d; c++) kt[c * S + t] = row[c];
            us_tensor_row_to_f32(&a->v, h, k0 + t, 1.0f, vb + t * d);
        }
        memset(vb + kn * d, 0, (size_t)((S - kn) * d) * sizeof *vb);
    }
    free(needed);

#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        float *base = scratch + (size_t)tid * per_thread;
        tile_scratch w = {base, base + S * d, base + S * d + S * S, base + 2 * S * d + S * S,
                          base + 2 * S * d + S * S + S};
        int64_t *valid = valid_all + (size_t)tid * (size_t)S;
        /* Heavy (late, causal) query blocks first so the dynamic schedule ends balanced. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < g.hq * nqb; item++) {
            int64_t h = item % g.hq, i = nqb - 1 - item / g.hq;
            int64_t kvh = h / g.group;
            int64_t row = (h / sel->heads_per_row) * nqb + i;
            int64_t q0 = i * S, mq = us_min64(S, nq - q0);
            int64_t m8 = (mq + 7) / 8 * 8; /* the score product works on 8 rows at a time */
            memset(w.q + mq * d, 0, (size_t)((m8 - mq) * d) * sizeof *w.q);
            for (int64_t t = mq; t < m8; t++) valid[t] = 0;
            for (int64_t t = 0; t < mq; t++) {
                us_tensor_row_to_f32(&a->q, h, q0 + t, qmul, w.q + t * d);
                w.m[t] = -INFINITY;
                w.l[t] = 0.0f;
            }
            memset(w.acc, 0, (size_t)(m8 * d) * sizeof *w.acc);
            const int32_t *idx = sel->indices + sel->row_offset[row];
            for (int32_t c = 0; c < sel->counts[row]; c++) {
                int64_t j = idx[c], k0 = j * S, kn = us_min64(S, nk - k0);
                const float *kb = kf + (size_t)((kvh * nkb + j) * S * d);
                const float *vb = vf + (size_t)((kvh * nkb + j) * S * d);
                for (int64_t t = 0; t < mq; t++) valid[t] = us_max64(0, us_min64(kn, g.limit[q0 + t] - k0 + 1));
                us_tile_qk(w.q, kb, w.s, (int)m8, (int)((kn + 31) / 32 * 32), (int)d, (int)S, (int)S);
                softmax_step(&w, m8, kn, S, d, valid);
                us_tile_pv(w.s, vb, w.acc, (int)m8, (int)kn, (int)d, (int)S);
            }
            for (int64_t t = 0; t < mq; t++) {
                float l = w.l[t];
                store_row(&a->o, h, q0 + t, w.acc + t * d, l > 0.0f ? 1.0f / l : 0.0f, d);
                if (a->lse) a->lse[h * nq + q0 + t] = l > 0.0f ? w.m[t] * US_LN2 + logf(l) : -INFINITY;
            }
        }
    }
    free(kf), free(vf), free(scratch), free(valid_all);
    us_geom_free(&g);
    return US_OK;
}

us_status us_attention_dense(const us_attn_args *a, us_error *err)
{
    us_selection *sel = NULL;
    us_status s = us_selection_dense(a, 128, &sel, err);
    if (!s) s = us_attention_sparse(a, sel, err);
    us_selection_free(&sel);
    return s;
}
