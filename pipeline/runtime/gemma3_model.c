/* gemma3_model.c: the Gemma 3 text-decoder forward pass (spec: shared/specs/gemma3.md, "Text decoder
 * forward"), fp32 activations and KV cache over stored-dtype weights, with image soft tokens: rows given
 * by the caller, attended bidirectionally inside each image. */
#include "gemma3_model.h"

#include "gemma3_matmul.h"
#include "vit_ops.h"

#include <cblas.h>
#undef I /* complex.h's imaginary unit, which cblas.h pulls in; I names the MLP width here */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define ATT_ROWS 32 /* queries per tile of the windowed attention */

struct us_gemma3_model {
    const us_gemma3_weights *w;
    us_gemma3_opts o;
    int nt;                 /* threads */
    int64_t max_ctx, max_batch, n_past;
    int64_t dense_from;     /* global-layer queries at positions >= this attend densely (INT64_MAX: none) */
    float *inv_local, *inv_global; /* (d/2) RoPE inverse frequencies, the global one / factor */
    float *kc, *vc;         /* (L, K, max_ctx, d) */
    float *h, *xn, *tmp;    /* (B, C) */
    float *q, *att;         /* (B, H*d) */
    float *k, *v;           /* (B, K*d) */
    float *gate, *up;       /* (B, I) */
    float *mm;              /* nt * us_rt_matmul_scratch(max cols) */
    float *scores;          /* nt * ATT_ROWS * max_ctx: one query tile's scores per thread */
    int64_t *limit;         /* (B): the last key position each chunk row sees (its own, or its image's end - 1) */
    us_span *spans;         /* the cached images' positions [start, end), sorted */
    int n_spans, cap_spans; /* two images are never adjacent, so max_ctx / 2 + 1 is room for all */
    int capture_layer;      /* -1: none; else its post-RoPE queries go to capture_q */
    float *capture_q;       /* (H, capture_cap, d), not owned */
    int64_t capture_cap;
    us_gemma3_attn_stats stats; /* global layers' prefill attention since the last clear */
};

us_gemma3_opts us_gemma3_opts_default(void)
{
    us_gemma3_opts o;
    memset(&o, 0, sizeof o);
    o.method = US_METHOD_DENSE;
    o.params = us_unisparse_params_default();
    o.dense_tail = 256;
    return o;
}

void us_gemma3_model_free(us_gemma3_model **pm)
{
    if (!pm || !*pm) return;
    us_gemma3_model *m = *pm;
    free(m->inv_local), free(m->inv_global), free(m->kc), free(m->vc), free(m->h), free(m->xn), free(m->tmp);
    free(m->q), free(m->att), free(m->k), free(m->v), free(m->gate), free(m->up), free(m->mm), free(m->scores);
    free(m->limit), free(m->spans);
    free(m);
    *pm = NULL;
}

static float *alloc_f(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

us_status us_gemma3_model_create(const us_gemma3_weights *w, const us_gemma3_opts *opts, us_gemma3_model **out,
                                 us_error *err)
{
    *out = NULL;
    if (!w) return us_error_set(err, US_ERR_INVALID, "weights are NULL");
    const us_gemma3_config *c = &w->cfg;
    us_gemma3_opts o = opts ? *opts : us_gemma3_opts_default();
    if (o.max_ctx < 0 || o.max_ctx > c->max_position_embeddings)
        return us_error_set(err, US_ERR_INVALID, "max_ctx %lld outside [0, max_position_embeddings = %d]",
                            (long long)o.max_ctx, c->max_position_embeddings);
    if (o.max_batch < 0) return us_error_set(err, US_ERR_INVALID, "max_batch %d must be >= 0", o.max_batch);
    if (o.threads < 0) return us_error_set(err, US_ERR_INVALID, "threads %d must be >= 0", o.threads);
    if (o.dense_tail < 0) return us_error_set(err, US_ERR_INVALID, "dense_tail %d must be >= 0", o.dense_tail);
    if ((int)o.method < 0 || o.method >= US_METHOD_COUNT)
        return us_error_set(err, US_ERR_INVALID, "attention method %d is unknown", (int)o.method);
    us_status s = us_unisparse_params_validate(&o.params, c->head_dim, c->num_heads, c->num_kv_heads, err);
    if (s) return s;

    us_gemma3_model *m = calloc(1, sizeof *m);
    if (!m) return us_error_set(err, US_ERR_NOMEM, "no memory for the model");
    m->w = w;
    m->o = o;
    m->capture_layer = -1;
    m->dense_from = INT64_MAX;
    m->nt = o.threads ? o.threads : omp_get_max_threads();
    m->max_ctx = o.max_ctx ? o.max_ctx : (c->max_position_embeddings < 8192 ? c->max_position_embeddings : 8192);
    m->max_batch = o.max_batch ? o.max_batch : 512;
    if (m->max_batch > m->max_ctx) m->max_batch = m->max_ctx;
    const int64_t C = c->hidden_size, I = c->intermediate_size, d = c->head_dim, L = c->num_layers;
    const int64_t Hd = (int64_t)c->num_heads * d, Kd = (int64_t)c->num_kv_heads * d, B = m->max_batch;
    int64_t maxk = C > I ? C : I;
    if (Hd > maxk) maxk = Hd;
    const int64_t cache = L * Kd * m->max_ctx;
    m->inv_local = alloc_f(d / 2), m->inv_global = alloc_f(d / 2);
    m->kc = alloc_f(cache), m->vc = alloc_f(cache);
    m->h = alloc_f(B * C), m->xn = alloc_f(B * C), m->tmp = alloc_f(B * C);
    m->q = alloc_f(B * Hd), m->att = alloc_f(B * Hd), m->k = alloc_f(B * Kd), m->v = alloc_f(B * Kd);
    m->gate = alloc_f(B * I), m->up = alloc_f(B * I);
    m->mm = alloc_f(m->nt * us_rt_matmul_scratch(maxk));
    m->scores = alloc_f(m->nt * ATT_ROWS * m->max_ctx);
    m->limit = malloc((size_t)B * sizeof *m->limit);
    m->cap_spans = (int)(m->max_ctx / 2 + 1);
    m->spans = malloc((size_t)m->cap_spans * sizeof *m->spans);
    if (!m->inv_local || !m->inv_global || !m->kc || !m->vc || !m->h || !m->xn || !m->tmp || !m->q || !m->att ||
        !m->k || !m->v || !m->gate || !m->up || !m->mm || !m->scores || !m->limit || !m->spans) {
        us_gemma3_model_free(&m);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the KV cache (%lld positions, %lld MiB) and scratch",
                            (long long)(cache ? cache / (Kd * L) : 0), (long long)(cache * 8 >> 20));
    }
    /* inv_freq = 1 / base^(2j/d), in fp32 as transformers computes it; linear factor on global only */
    for (int64_t j = 0; j < d / 2; j++) {
        float e = (float)(2 * j) / (float)d;
        m->inv_local[j] = 1.0f / powf(c->rope_local_base, e);
        m->inv_global[j] = 1.0f / powf(c->rope_global_base, e) / c->rope_global_factor;
    }
    *out = m;
    return US_OK;
}

void us_gemma3_reset(us_gemma3_model *m)
{
    m->n_past = 0;
    m->n_spans = 0;
    m->dense_from = INT64_MAX;
}

void us_gemma3_set_prompt_end(us_gemma3_model *m, int64_t end)
{
    m->dense_from = end - m->o.dense_tail;
}

us_status us_gemma3_truncate(us_gemma3_model *m, int64_t n_past, us_error *err)
{
    if (n_past < 0 || n_past > m->n_past)
        return us_error_set(err, US_ERR_INVALID, "truncate to %lld positions: the cache holds %lld", (long long)n_past,
                            (long long)m->n_past);
    m->n_past = n_past;
    /* images past the cut go; one cut through keeps its cached part (and no later call may continue it) */
    while (m->n_spans > 0 && m->spans[m->n_spans - 1].start >= n_past) m->n_spans--;
    if (m->n_spans > 0 && m->spans[m->n_spans - 1].end > n_past) m->spans[m->n_spans - 1].end = n_past;
    return US_OK;
}

const us_span *us_gemma3_image_spans(const us_gemma3_model *m, int *n)
{
    *n = m->n_spans;
    return m->spans;
}

us_gemma3_attn_stats us_gemma3_attn_stats_get(const us_gemma3_model *m) { return m->stats; }
void us_gemma3_attn_stats_clear(us_gemma3_model *m) { memset(&m->stats, 0, sizeof m->stats); }
int64_t us_gemma3_n_past(const us_gemma3_model *m) { return m->n_past; }
int64_t us_gemma3_max_ctx(const us_gemma3_model *m) { return m->max_ctx; }

/* y (n) = x * rsqrt(mean(x^2) + eps) * w1, w1 = (1 + w) already. In place allowed. */
static void rmsnorm(const float *x, const float *w1, int64_t n, float eps, float *y)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float r = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * r) * w1[i];
}

/* Split-half RoPE on x (d) at position pos: pairs (j, j + d/2). */
static void rope(float *x, int64_t d, int64_t pos, const float *inv)
{
    const int64_t h = d / 2;
    for (int64_t j = 0; j < h; j++) {
        const float a = (float)pos * inv[j], cs = cosf(a), sn = sinf(a);
        const float x1 = x[j], x2 = x[j + h];
        x[j] = x1 * cs - x2 * sn;
        x[j + h] = x2 * cs + x1 * sn;
    }
}

/* Attention over the cache for layers and calls the attention library does not take: sliding-window
 * layers, and single decode tokens of global layers. Query j of the call (position p0 + j) sees keys
 * max(0, p - window + 1) .. limit[j] (limit: p, or the end of its image). Work items are (tile of
 * ATT_ROWS queries, head): the tile's scores against its key range come from one sgemm, masked rows
 * get a softmax, and one more sgemm applies them to the values, so the sliding layers run at matrix
 * speed instead of a scalar loop per query. */
static void attend_window(us_gemma3_model *m, int64_t layer, int64_t T, int64_t p0, int64_t window, float scale)
{
    const us_gemma3_config *c = &m->w->cfg;
    const int64_t d = c->head_dim, H = c->num_heads, K = c->num_kv_heads, group = H / K, Hd = H * d;
    const float *kc = m->kc + layer * K * m->max_ctx * d, *vc = m->vc + layer * K * m->max_ctx * d;
    const int64_t tiles = (T + ATT_ROWS - 1) / ATT_ROWS;
#pragma omp parallel for num_threads(m->nt) schedule(dynamic, 1)
    for (int64_t item = 0; item < tiles * H; item++) {
        const int64_t t0 = (item / H) * ATT_ROWS, h = item % H, kvh = h / group;
        const int64_t R = T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS;
        int64_t lo = p0 + t0 - window + 1, hi = 0;
        if (lo < 0) lo = 0;
        for (int64_t r = 0; r < R; r++)
            if (m->limit[t0 + r] > hi) hi = m->limit[t0 + r];
        const int64_t n = hi - lo + 1; /* the tile's key range [lo, hi] */
        const float *kb = kc + (kvh * m->max_ctx + lo) * d, *vb = vc + (kvh * m->max_ctx + lo) * d;
        float *s = m->scores + (int64_t)omp_get_thread_num() * ATT_ROWS * m->max_ctx; /* (R, n) */
        /* s (R, n) = q_tile (R, d), row stride H*d  x  k_range^T (d, n) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)n, (int)d, scale, m->q + t0 * Hd + h * d,
                    (int)Hd, kb, (int)d, 0.0f, s, (int)n);
        for (int64_t r = 0; r < R; r++) {
            const int64_t p = p0 + t0 + r, a = p - window + 1 > lo ? p - window + 1 - lo : 0,
                          b = m->limit[t0 + r] - lo; /* visible: [a, b] of the range */
            float *row = s + r * n, mx = -INFINITY, sum = 0.0f;
            for (int64_t j = a; j <= b; j++) mx = row[j] > mx ? row[j] : mx;
            for (int64_t j = 0; j < n; j++) {
                const float e = j >= a && j <= b ? expf(row[j] - mx) : 0.0f;
                row[j] = e;
                sum += e;
            }
            const float inv = 1.0f / sum;
            for (int64_t j = a; j <= b; j++) row[j] *= inv;
        }
        /* o_tile (R, d), row stride H*d = p (R, n) x v_range (n, d) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)d, (int)n, 1.0f, s, (int)n, vb, (int)d, 0.0f,
                    m->att + t0 * Hd + h * d, (int)Hd);
    }
}

/* y = x W^T through the tiled stored-dtype product, timed into m->stats (the prefill's share of
 * sgemm speed is a benchmark target). */
static void matmul(us_gemma3_model *m, const float *x, int64_t T, int64_t ldx, const us_gemma3_mat *W, float *y,
                   int64_t ldy)
{
    const double t0 = omp_get_wtime();
    us_rt_matmul(x, T, ldx, W, y, ldy, m->mm, m->nt);
    m->stats.matmul_ms += 1e3 * (omp_get_wtime() - t0);
    m->stats.matmul_flop += 2.0 * (double)T * (double)W->rows * (double)W->cols;
}

/* Global-layer prefill attention through the attention library (selector, then the block-sparse
 * kernel), timed and with its realised density accumulated into m->stats. */
static us_status global_attention(us_gemma3_model *m, const us_attn_args *a, us_error *err)
{
    const double t0 = omp_get_wtime();
    us_selection *sel = NULL;
    /* the prompt's last opts.dense_tail queries keep every visible block (us_gemma3_set_prompt_end): a
     * call inside that tail selects nothing, a call reaching into it fills its tail rows */
    const int all_tail = a->q_offset >= m->dense_from;
    us_status s = us_select(all_tail ? US_METHOD_DENSE : m->o.method, a, &m->o.params, &sel, err);
    if (!s && !all_tail && m->o.method != US_METHOD_DENSE && a->q_offset + a->q.shape[1] > m->dense_from)
        us_selection_keep_all_from(sel, a, m->dense_from);
    if (!s) s = us_attention_sparse(a, sel, err);
    if (!s) {
        /* visible (query, key) pairs of the chunk: query t sees limit[t] + 1 keys (q_offset + t + 1 but for
         * image queries, which see their whole image) */
        double visible = 0.0;
        for (int64_t t = 0; t < a->q.shape[1]; t++) visible += (double)(m->limit[t] + 1);
        m->stats.visible_pairs += visible;
        m->stats.kept_pairs += sel->pair_density * visible;
        m->stats.select_ms += sel->est_ms;
        m->stats.attn_ms += 1e3 * (omp_get_wtime() - t0);
        m->stats.calls++;
    }
    us_selection_free(&sel);
    return s;
}

/* One chunk of T <= max_batch tokens at positions n_past..; logits for chunk rows [r0, T) into out.
 * img_id: the image token id (its positions take the rows of img (n, C) in order), or -1 for text only.
 * The chunk holds whole images only. */
static us_status forward_chunk(us_gemma3_model *m, const int32_t *ids, int64_t T, int64_t r0, float *out,
                               int64_t img_id, const float *img, us_error *err)
{
    const us_gemma3_weights *w = m->w;
    const us_gemma3_config *c = &w->cfg;
    const int64_t C = c->hidden_size, I = c->intermediate_size, d = c->head_dim, H = c->num_heads,
                  K = c->num_kv_heads, Hd = H * d, Kd = K * d, p0 = m->n_past, V = c->vocab_size;
    const float eps = c->rms_norm_eps, scale = 1.0f / sqrtf(c->query_pre_attn_scalar);

    /* 1. h = E[id] * sqrt(C), the scale and the product in the embedding dtype */
#pragma omp parallel for num_threads(m->nt) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        if (ids[t] == img_id) continue;
        float *h = m->h + t * C;
        us_gemma3_mat_row(&w->embed, ids[t], h);
        for (int64_t i = 0; i < C; i++) {
            float x = h[i] * w->embed_scale;
            if (w->embed.dtype == US_BF16) x = us_bf16_to_f32(us_f32_to_bf16(x));
            else if (w->embed.dtype == US_F16) x = us_f16_to_f32(us_f32_to_f16(x));
            h[i] = x;
        }
    }
    /* image positions: the caller's rows as they are; each run of them is a span of the cache, and its
     * queries see up to the span's end */
    const int first_span = m->n_spans;
    for (int64_t t = 0, j = 0; t < T; t++) {
        m->limit[t] = p0 + t;
        if (ids[t] != img_id) continue;
        memcpy(m->h + t * C, img + j++ * C, (size_t)C * sizeof *m->h);
        if (t > 0 && ids[t - 1] == img_id) m->spans[m->n_spans - 1].end++;
        else m->spans[m->n_spans++] = (us_span){p0 + t, p0 + t + 1};
    }
    for (int i = first_span; i < m->n_spans; i++)
        for (int64_t p = m->spans[i].start; p < m->spans[i].end; p++) m->limit[p - p0] = m->spans[i].end - 1;

    for (int64_t l = 0; l < c->num_layers; l++) {
        const us_gemma3_layer *y = &w->layers[l];
        const int global = c->is_global[l];
        const float *inv = global ? m->inv_global : m->inv_local;
        float *kc = m->kc + l * Kd * m->max_ctx, *vc = m->vc + l * Kd * m->max_ctx;

        /* 2-3. attention block */
#pragma omp parallel for num_threads(m->nt) schedule(static)
        for (int64_t t = 0; t < T; t++) rmsnorm(m->h + t * C, y->in_norm, C, eps, m->xn + t * C);
        matmul(m, m->xn, T, C, &y->q, m->q, Hd); /* (T, H*d) */
        matmul(m, m->xn, T, C, &y->k, m->k, Kd); /* (T, K*d) */
        matmul(m, m->xn, T, C, &y->v, m->v, Kd); /* (T, K*d) */
#pragma omp parallel for num_threads(m->nt) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < H; h++) {
                float *qh = m->q + t * Hd + h * d;
                rmsnorm(qh, y->q_norm, d, eps, qh);
                rope(qh, d, p0 + t, inv);
                if (l == m->capture_layer && p0 + t < m->capture_cap)
                    memcpy(m->capture_q + (h * m->capture_cap + p0 + t) * d, qh, (size_t)d * sizeof *qh);
            }
            for (int64_t h = 0; h < K; h++) {
                float *kh = m->k + t * Kd + h * d;
                rmsnorm(kh, y->k_norm, d, eps, kh);
                rope(kh, d, p0 + t, inv);
                memcpy(kc + (h * m->max_ctx + p0 + t) * d, kh, (size_t)d * sizeof *kh);       /* cache (K, ctx, d) */
                memcpy(vc + (h * m->max_ctx + p0 + t) * d, m->v + t * Kd + h * d, (size_t)d * sizeof *kh);
            }
        }
        if (global && T > 1) {
            us_attn_args a = us_attn_args_default();
            a.q = us_tensor_3d(m->q, US_F32, H, T, d); /* [H, T, d] over (T, H*d) */
            a.q.stride[0] = d, a.q.stride[1] = Hd;
            a.o = us_tensor_3d(m->att, US_F32, H, T, d);
            a.o.stride[0] = d, a.o.stride[1] = Hd;
            a.k = us_tensor_3d(kc, US_F32, K, p0 + T, d); /* [K, p0+T, d] inside (K, ctx, d) */
            a.k.stride[0] = m->max_ctx * d;
            a.v = us_tensor_3d(vc, US_F32, K, p0 + T, d);
            a.v.stride[0] = m->max_ctx * d;
            a.q_offset = p0;
            a.scale = scale;
            if (m->n_spans > first_span) { /* earlier images lie wholly behind this chunk's queries */
                a.mask.kind = US_MASK_CAUSAL_SPANS;
                a.mask.spans = m->spans + first_span;
                a.mask.n_spans = m->n_spans - first_span;
            }
            us_status s = global_attention(m, &a, err);
            if (s) {
                m->n_spans = first_span;
                return s;
            }
        } else {
            attend_window(m, l, T, p0, global ? p0 + T + 1 : c->sliding_window, scale);
        }
        matmul(m, m->att, T, Hd, &y->o, m->tmp, C); /* (T, C) */
#pragma omp parallel for num_threads(m->nt) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            float *x = m->tmp + t * C, *h = m->h + t * C;
            rmsnorm(x, y->post_attn_norm, C, eps, x);
            for (int64_t i = 0; i < C; i++) h[i] += x[i];
            rmsnorm(h, y->pre_ff_norm, C, eps, m->xn + t * C);
        }

        /* 4. MLP block */
        matmul(m, m->xn, T, C, &y->gate, m->gate, I); /* (T, I) */
        matmul(m, m->xn, T, C, &y->up, m->up, I);     /* (T, I) */
#pragma omp parallel for simd num_threads(m->nt) schedule(static)
        for (int64_t x = 0; x < T * I; x++) m->gate[x] = us_vit_gelu_tanh(m->gate[x]) * m->up[x];
        matmul(m, m->gate, T, I, &y->down, m->tmp, C); /* (T, C) */
#pragma omp parallel for num_threads(m->nt) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            float *x = m->tmp + t * C, *h = m->h + t * C;
            rmsnorm(x, y->post_ff_norm, C, eps, x);
            for (int64_t i = 0; i < C; i++) h[i] += x[i];
        }
    }

    /* 5. final norm and tied logits, only for the rows asked for */
    if (r0 < T) {
#pragma omp parallel for num_threads(m->nt) schedule(static)
        for (int64_t t = r0; t < T; t++) rmsnorm(m->h + t * C, w->final_norm, C, eps, m->xn + t * C);
        matmul(m, m->xn + r0 * C, T - r0, C, &w->lm_head, out, V); /* (T - r0, V) */
    }
    m->n_past += T;
    return US_OK;
}

/* Tokens of ids (T) for the next call of about `want`: want backed off to the start of an image it would
 * cut, or the whole first image when one starts at 0 and is longer than want. img_id -1: text only. */
static int64_t chunk_len(const int32_t *ids, int64_t T, int64_t want, int64_t img_id)
{
    if (want >= T) return T;
    int64_t n = want < 1 ? 1 : want;
    while (n > 0 && ids[n] == img_id && ids[n - 1] == img_id) n--;
    if (n == 0) { /* an image from ids[0], longer than want: all of it */
        n = 1;
        while (n < T && ids[n] == img_id) n++;
    }
    return n;
}

int64_t us_gemma3_chunk_len(const us_gemma3_config *c, const int32_t *ids, int64_t T, int64_t want)
{
    return chunk_len(ids, T, want, c->image_token_id);
}

/* us_gemma3_forward (images 0) and us_gemma3_forward_embeds (images 1): checks everything before running
 * anything, then cuts the call into chunks of at most max_batch tokens, never inside an image. */
static us_status forward(us_gemma3_model *m, const int32_t *ids, int64_t T, int images, const float *image_embeds,
                         int64_t n_image_tokens, int64_t n_logits, float *logits, us_error *err)
{
    if (!m || !ids) return us_error_set(err, US_ERR_INVALID, "model or ids are NULL");
    const us_gemma3_config *c = &m->w->cfg;
    if (T < 1) return us_error_set(err, US_ERR_INVALID, "T = %lld tokens: must be >= 1", (long long)T);
    if (n_logits < 0 || n_logits > T)
        return us_error_set(err, US_ERR_INVALID, "n_logits = %lld outside [0, T = %lld]", (long long)n_logits,
                            (long long)T);
    if (n_logits > 0 && !logits) return us_error_set(err, US_ERR_INVALID, "logits is NULL");
    if (m->n_past + T > c->max_position_embeddings)
        return us_error_set(err, US_ERR_INVALID,
                            "positions %lld..%lld exceed max_position_embeddings = %d (%lld cached + %lld new tokens)",
                            (long long)m->n_past, (long long)(m->n_past + T - 1), c->max_position_embeddings,
                            (long long)m->n_past, (long long)T);
    if (m->n_past + T > m->max_ctx)
        return us_error_set(err, US_ERR_INVALID, "positions %lld..%lld exceed the KV cache (max_ctx = %lld)",
                            (long long)m->n_past, (long long)(m->n_past + T - 1), (long long)m->max_ctx);
    const int64_t img_id = images ? c->image_token_id : -1, C = c->hidden_size;
    if (images && (n_image_tokens < 0 || (n_image_tokens > 0 && !image_embeds)))
        return us_error_set(err, US_ERR_INVALID, "n_image_tokens = %lld with image_embeds %s",
                            (long long)n_image_tokens, image_embeds ? "given" : "NULL");
    int64_t n_img = 0, run = 0;
    for (int64_t t = 0; t < T; t++) {
        if (images && ids[t] == img_id) {
            n_img++;
            if (++run > m->max_batch)
                return us_error_set(err, US_ERR_INVALID,
                                    "the image at token %lld has more than max_batch = %lld soft tokens: an image must "
                                    "fit in one prefill chunk (raise us_gemma3_opts.max_batch)",
                                    (long long)(t - run + 1), (long long)m->max_batch);
            continue;
        }
        run = 0;
        if (ids[t] < 0 || ids[t] >= c->vocab_size)
            return us_error_set(err, US_ERR_INVALID, "token %lld: id %d outside [0, vocab_size = %d)", (long long)t,
                                (int)ids[t], c->vocab_size);
    }
    if (images && n_img != n_image_tokens)
        return us_error_set(err, US_ERR_INVALID,
                            "the ids hold %lld image soft tokens (id %lld) but %lld image embedding rows were given",
                            (long long)n_img, (long long)img_id, (long long)n_image_tokens);
    if (n_img && ids[0] == img_id && m->n_spans > 0 && m->spans[m->n_spans - 1].end == m->n_past)
        return us_error_set(err, US_ERR_INVALID,
                            "the call starts with image soft tokens right after the cached image at positions "
                            "%lld..%lld: an image's soft tokens must come in one call",
                            (long long)m->spans[m->n_spans - 1].start, (long long)m->n_past - 1);
    const int64_t first = T - n_logits; /* call index of the first logits row */
    int64_t row = 0;                    /* image rows used so far */
    for (int64_t c0 = 0; c0 < T;) {
        /* never inside an image (each fits in max_batch, checked above) */
        const int64_t n = chunk_len(ids + c0, T - c0, m->max_batch, img_id);
        const int64_t r0 = first > c0 ? (first - c0 < n ? first - c0 : n) : 0;
        float *out = r0 < n ? logits + (c0 + r0 - first) * (int64_t)c->vocab_size : NULL;
        int64_t k = 0;
        for (int64_t t = c0; t < c0 + n; t++) k += ids[t] == img_id;
        us_status s = forward_chunk(m, ids + c0, n, r0, out, img_id, k ? image_embeds + row * C : NULL, err);
        if (s) return s;
        row += k;
        c0 += n;
    }
    return US_OK;
}

us_status us_gemma3_forward(us_gemma3_model *m, const int32_t *ids, int64_t T, int64_t n_logits, float *logits,
                            us_error *err)
{
    return forward(m, ids, T, 0, NULL, 0, n_logits, logits, err);
}

us_status us_gemma3_forward_embeds(us_gemma3_model *m, const int32_t *ids, int64_t T, const float *image_embeds,
                                   int64_t n_image_tokens, int64_t n_logits, float *logits, us_error *err)
{
    return forward(m, ids, T, 1, image_embeds, n_image_tokens, n_logits, logits, err);
}

us_status us_gemma3_capture_queries(us_gemma3_model *m, int layer, float *q, int64_t cap, us_error *err)
{
    const us_gemma3_config *c = &m->w->cfg;
    if (layer >= c->num_layers || layer < -1 || (layer >= 0 && (!q || cap < 0)))
        return us_error_set(err, US_ERR_INVALID, "query capture: layer %d of %d, buffer %p", layer, c->num_layers,
                            (void *)q);
    m->capture_layer = layer;
    m->capture_q = layer >= 0 ? q : NULL;
    m->capture_cap = layer >= 0 ? cap : 0;
    return US_OK;
}

us_status us_gemma3_cached_kv(const us_gemma3_model *m, int layer, us_tensor *k, us_tensor *v, us_error *err)
{
    const us_gemma3_config *c = &m->w->cfg;
    if (layer < 0 || layer >= c->num_layers)
        return us_error_set(err, US_ERR_INVALID, "layer %d: the model has %d layers", layer, c->num_layers);
    if (m->n_past == 0) return us_error_set(err, US_ERR_INVALID, "the KV cache is empty");
    const int64_t K = c->num_kv_heads, d = c->head_dim, Kd = K * d;
    float *kc = m->kc + layer * Kd * m->max_ctx, *vc = m->vc + layer * Kd * m->max_ctx;
    *k = us_tensor_3d(kc, US_F32, K, m->n_past, d);
    *v = us_tensor_3d(vc, US_F32, K, m->n_past, d);
    k->stride[0] = v->stride[0] = m->max_ctx * d;
    return US_OK;
}
