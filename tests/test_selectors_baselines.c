/* test_selectors_baselines.c: the baseline selectors (XAttention, FlexPrefill, MInference,
 * A-shape) on small ragged GQA inputs under every mask kind and a query offset: valid selections,
 * the exact A-shape pattern, planted structure found, and "keep everything" equal to dense. */
#include "reference.h"
#include "unisparse/attention.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { HQ = 4, HKV = 2, D = 64 };

/* Query and key counts, q_offset (-1 = Nk - Nq) and two spans for the spans mask. */
typedef struct {
    int64_t nq, nk, q_offset;
    us_span spans[2];
} shape_case;

static const shape_case cases[] = {
    {700, 700, -1, {{100, 260}, {500, 610}}}, /* ragged: 10 full blocks of 64 and 60 */
    {300, 700, 333, {{100, 260}, {500, 610}}}, /* chunked prefill at an unaligned offset */
    {50, 130, -1, {{20, 60}, {85, 120}}},      /* fewer queries than any sample */
    {5, 9, -1, {{0, 3}, {4, 9}}},              /* one partial block */
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static const us_mask_kind masks[] = {US_MASK_CAUSAL, US_MASK_BIDIRECTIONAL, US_MASK_CAUSAL_SPANS};
static const us_method methods[] = {US_METHOD_XATTENTION, US_METHOD_FLEXPREFILL, US_METHOD_MINFERENCE,
                                    US_METHOD_ASHAPE};

typedef struct {
    float *q, *k, *v, *o, *o_dense;
    us_attn_args a;
} inputs;

/* Gaussian Q, K, V (std 0.3) for case c under mask kind. */
static void inputs_make(inputs *in, const shape_case *c, us_mask_kind kind, uint64_t seed)
{
    int64_t nq = c->nq, nk = c->nk;
    in->q = malloc((size_t)(HQ * nq * D) * sizeof(float));
    in->k = malloc((size_t)(HKV * nk * D) * sizeof(float));
    in->v = malloc((size_t)(HKV * nk * D) * sizeof(float));
    in->o = calloc((size_t)(HQ * nq * D), sizeof(float));
    in->o_dense = calloc((size_t)(HQ * nq * D), sizeof(float));
    cr_assert(in->q && in->k && in->v && in->o && in->o_dense);
    ref_fill_gaussian(in->q, HQ * nq * D, seed, 0.3f);
    ref_fill_gaussian(in->k, HKV * nk * D, seed + 1, 0.3f);
    ref_fill_gaussian(in->v, HKV * nk * D, seed + 2, 1.0f);
    in->a = us_attn_args_default();
    in->a.q = us_tensor_3d(in->q, US_F32, HQ, nq, D);
    in->a.k = us_tensor_3d(in->k, US_F32, HKV, nk, D);
    in->a.v = us_tensor_3d(in->v, US_F32, HKV, nk, D);
    in->a.o = us_tensor_3d(in->o, US_F32, HQ, nq, D);
    in->a.q_offset = c->q_offset;
    in->a.mask.kind = kind;
    if (kind == US_MASK_CAUSAL_SPANS) {
        in->a.mask.spans = c->spans;
        in->a.mask.n_spans = 2;
    }
}

static void inputs_free(inputs *in)
{
    free(in->q), free(in->k), free(in->v), free(in->o), free(in->o_dense);
}

/* A fixed random unit vector. */
static void unit_vector(float *u)
{
    ref_fill_gaussian(u, D, 99, 1.0f);
    double n = 0;
    for (int c = 0; c < D; c++) n += (double)u[c] * u[c];
    for (int c = 0; c < D; c++) u[c] /= (float)sqrt(n);
}

/* Every query += u; keys [k0, k1) of KV head kv_head (-1: every KV head) += mul * u. */
static void plant_in(inputs *in, int64_t kv_head, int64_t k0, int64_t k1, float mul)
{
    float u[D];
    unit_vector(u);
    int64_t nq = in->a.q.shape[1], nk = in->a.k.shape[1];
    for (int64_t r = 0; r < HQ * nq; r++)
        for (int c = 0; c < D; c++) in->q[r * D + c] += u[c];
    for (int64_t h = 0; h < HKV; h++)
        for (int64_t t = k0; t < k1 && (kv_head < 0 || h == kv_head); t++)
            for (int c = 0; c < D; c++) in->k[(h * nk + t) * D + c] += mul * u[c];
}

static void plant(inputs *in, int64_t k0, int64_t k1, float mul) { plant_in(in, -1, k0, k1, mul); }

static int64_t q_offset_of(const us_attn_args *a)
{
    return a->q_offset < 0 ? a->k.shape[1] - a->q.shape[1] : a->q_offset;
}

/* Whether some query of query block i sees key position kpos (from the mask's definition). */
static bool block_sees(const us_attn_args *a, int block, int64_t i, int64_t kpos)
{
    int64_t off = q_offset_of(a), nq = a->q.shape[1];
    for (int64_t q = i * block; q < nq && q < (i + 1) * block; q++)
        if (ref_visible(a, off + q, kpos)) return true;
    return false;
}

/* Whether some (query of block i, key of block j) pair is visible. */
static bool tile_visible(const us_attn_args *a, int block, int64_t i, int64_t j)
{
    for (int64_t t = j * block; t < a->k.shape[1] && t < (j + 1) * block; t++)
        if (block_sees(a, block, i, t)) return true;
    return false;
}

static bool row_has(const us_selection *sel, int64_t r, int32_t j)
{
    const int32_t *idx = sel->indices + sel->row_offset[r];
    for (int32_t c = 0; c < sel->counts[r]; c++)
        if (idx[c] == j) return true;
    return false;
}

static us_unisparse_params params(int block)
{
    us_unisparse_params p = us_unisparse_params_default();
    p.block = block;
    return p;
}

static us_selection *select_ok(us_method m, const us_attn_args *a, const us_unisparse_params *p)
{
    us_error err = {0};
    us_selection *sel = NULL;
    us_status s = us_select(m, a, p, &sel, &err);
    cr_assert_eq(s, US_OK, "%s: %s", us_method_name(m), err.msg);
    s = us_selection_check(sel, a, 1, &err);
    cr_assert_eq(s, US_OK, "%s mask %s: %s", us_method_name(m), us_mask_kind_name(a->mask.kind), err.msg);
    cr_assert_eq(sel->heads_per_row, 1);
    cr_assert_eq(sel->n_heads, HQ);
    return sel;
}

Test(baselines, valid_for_every_mask_and_shape)
{
    const int blocks[] = {64, 128};
    for (int c = 0; c < N_CASES; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 10 + (uint64_t)c);
            for (int b = 0; b < 2; b++)
                for (int m = 0; m < 4; m++) {
                    us_unisparse_params p = params(blocks[b]);
                    us_selection *sel = select_ok(methods[m], &in.a, &p);
                    cr_assert(sel->density > 0.0 && sel->density <= 1.0, "%s case %d mask %s: density %g",
                              us_method_name(methods[m]), c, us_mask_kind_name(masks[mk]), sel->density);
                    cr_assert(sel->pair_density > 0.0 && sel->pair_density <= 1.0 + 1e-12);
                    us_selection_free(&sel);
                }
            inputs_free(&in);
        }
}

Test(ashape, keeps_exactly_sink_window_and_diagonal)
{
    const int S = 64, L = 150, sink = 2;
    for (int c = 0; c < N_CASES; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 20);
            us_unisparse_params p = params(S);
            p.ashape_local_tokens = L;
            p.sink_blocks = sink;
            us_selection *sel = select_ok(US_METHOD_ASHAPE, &in.a, &p);
            int64_t off = q_offset_of(&in.a), nq = in.a.q.shape[1];
            for (int64_t i = 0; i < sel->n_qblocks; i++) {
                int64_t p0 = off + i * S, p1 = off + (nq < (i + 1) * S ? nq : (i + 1) * S) - 1;
                for (int32_t j = 0; j < sel->n_kblocks; j++) {
                    /* key block j covers [j*S, j*S+S); the window is positions [p0 - L, p1] */
                    bool in_window = (int64_t)j * S + S - 1 >= p0 - L && (int64_t)j * S <= p1;
                    bool want = tile_visible(&in.a, S, i, j) && (j < sink || in_window);
                    for (int64_t h = 0; h < HQ; h++)
                        cr_assert_eq(row_has(sel, h * sel->n_qblocks + i, j), want,
                                     "case %d mask %s head %lld row %lld block %d", c,
                                     us_mask_kind_name(masks[mk]), (long long)h, (long long)i, j);
                }
            }
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

/* Asserts that every query block that sees key position kpos keeps its block, in query heads
 * [h0, h1). */
static void assert_keeps_column_in(const us_selection *sel, const us_attn_args *a, int64_t kpos, int64_t h0,
                                   int64_t h1, const char *what)
{
    int S = sel->block;
    int checked = 0;
    for (int64_t i = 0; i < sel->n_qblocks; i++) {
        if (!block_sees(a, S, i, kpos)) continue;
        checked++;
        for (int64_t h = h0; h < h1; h++)
            cr_assert(row_has(sel, h * sel->n_qblocks + i, (int32_t)(kpos / S)),
                      "%s mask %s: head %lld query block %lld dropped planted block %lld", what,
                      us_mask_kind_name(a->mask.kind), (long long)h, (long long)i, (long long)(kpos / S));
    }
    cr_assert(checked > 0);
}

static void assert_keeps_column(const us_selection *sel, const us_attn_args *a, int64_t kpos,
                                const char *what)
{
    assert_keeps_column_in(sel, a, kpos, 0, HQ, what);
}

Test(minference, keeps_planted_vertical_column)
{
    const int64_t col = 200;
    for (int c = 0; c < 2; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 30);
            plant(&in, col, col + 1, 8.0f);
            us_unisparse_params p = params(64);
            p.mi_vertical = 31; /* the 30 forced first columns and one chosen */
            p.mi_slash = 100;   /* the 100 forced local diagonals only */
            us_selection *sel = select_ok(US_METHOD_MINFERENCE, &in.a, &p);
            assert_keeps_column(sel, &in.a, col, "minference");
            cr_assert(sel->density < 1.0);
            us_selection_free(&sel);
            p = params(64);
            sel = select_ok(US_METHOD_MINFERENCE, &in.a, &p);
            assert_keeps_column(sel, &in.a, col, "minference default");
            /* the 100 most local diagonals: key blocks covering [p0 - 99, p1] */
            int64_t off = q_offset_of(&in.a), nq = in.a.q.shape[1];
            for (int64_t i = 0; i < sel->n_qblocks; i++) {
                int64_t p0 = off + i * 64, p1 = off + (nq < (i + 1) * 64 ? nq : (i + 1) * 64) - 1;
                for (int64_t j = (p0 < 99 ? 0 : p0 - 99) / 64; j <= p1 / 64; j++)
                    for (int64_t h = 0; h < HQ; h++)
                        cr_assert(row_has(sel, h * sel->n_qblocks + i, (int32_t)j),
                                  "row %lld lacks local block %lld", (long long)i, (long long)j);
            }
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

Test(flexprefill, keeps_planted_vertical_column)
{
    const int64_t col = 200;
    for (int c = 0; c < 2; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 40);
            plant(&in, col, col + 1, 8.0f);
            us_unisparse_params p = params(64);
            p.flex_delta = 0.0f; /* sqrt(JS) < 0 never holds: vertical-slash in every head */
            p.flex_gamma = 0.001f; /* the heaviest column (the planted one) and diagonal alone */
            p.flex_min_budget = 0;
            us_selection *sel = select_ok(US_METHOD_FLEXPREFILL, &in.a, &p);
            assert_keeps_column(sel, &in.a, col, "flexprefill vertical-slash");
            cr_assert(sel->density < 1.0);
            us_selection_free(&sel);
            p = params(64);
            sel = select_ok(US_METHOD_FLEXPREFILL, &in.a, &p);
            assert_keeps_column(sel, &in.a, col, "flexprefill default");
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

Test(flexprefill, query_aware_keeps_planted_block)
{
    const int64_t blk = 4; /* keys [256, 320) */
    for (int c = 0; c < 2; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 50);
            plant(&in, blk * 64, blk * 64 + 64, 2.0f);
            us_unisparse_params p = params(64);
            p.flex_delta = 1.0f; /* sqrt(JS) <= sqrt(ln 2) < 1: query-aware in every head */
            p.flex_gamma = 0.5f; /* above the forced sink + diagonal mass of every row */
            p.flex_min_budget = 0;
            us_selection *sel = select_ok(US_METHOD_FLEXPREFILL, &in.a, &p);
            assert_keeps_column(sel, &in.a, blk * 64, "flexprefill query-aware");
            cr_assert(sel->density < 1.0);
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

Test(flexprefill, minimum_budget_is_a_floor)
{
    for (int mk = 0; mk < 3; mk++)
        for (int qa = 0; qa < 2; qa++) {
            inputs in;
            inputs_make(&in, &cases[0], masks[mk], 55);
            us_unisparse_params p = params(64);
            p.flex_delta = qa ? 1.0f : 0.0f;
            p.flex_gamma = 0.05f;
            p.flex_min_budget = 300; /* ceil(300 / 64) = 5 blocks */
            us_selection *sel = select_ok(US_METHOD_FLEXPREFILL, &in.a, &p);
            for (int64_t r = 0; r < (int64_t)sel->n_heads * sel->n_qblocks; r++) {
                int32_t vis = sel->visible[r % sel->n_qblocks];
                cr_assert_geq(sel->counts[r], vis < 5 ? vis : 5, "mask %s mode %d row %lld: %d kept",
                              us_mask_kind_name(masks[mk]), qa, (long long)r, sel->counts[r]);
            }
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

Test(xattention, xattn_tau_one_keeps_every_visible_block)
{
    for (int c = 0; c < N_CASES; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 60);
            us_unisparse_params p = params(64);
            p.xattn_tau = 1.0f;
            us_selection *sel = select_ok(US_METHOD_XATTENTION, &in.a, &p);
            for (int64_t r = 0; r < (int64_t)sel->n_heads * sel->n_qblocks; r++)
                cr_assert_eq(sel->counts[r], sel->visible[r % sel->n_qblocks]);
            cr_assert_float_eq(sel->density, 1.0, 1e-12);
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

Test(xattention, keeps_planted_block)
{
    const int64_t blk = 3; /* keys [192, 256) */
    for (int c = 0; c < 2; c++)
        for (int mk = 0; mk < 3; mk++)
            for (int stride = 4; stride <= 16; stride *= 2) {
                inputs in;
                inputs_make(&in, &cases[c], masks[mk], 70);
                plant(&in, blk * 64, blk * 64 + 64, 8.0f);
                us_unisparse_params p = params(64);
                p.xattn_tau = 0.8f; /* above the forced sink + diagonal mass of every row */
                p.xattn_stride = stride;
                us_selection *sel = select_ok(US_METHOD_XATTENTION, &in.a, &p);
                assert_keeps_column(sel, &in.a, blk * 64, "xattention");
                cr_assert(sel->density < 1.0, "stride %d: density %g", stride, sel->density);
                us_selection_free(&sel);
                inputs_free(&in);
            }
}

/* GQA: columns planted in one KV head each are found by that head's query group only. */
Test(baselines, gqa_maps_query_heads_to_their_kv_head)
{
    const int64_t col0 = 300, col1 = 200; /* in KV heads 0 and 1: key blocks 4 and 3 */
    for (int mk = 0; mk < 3; mk++)
        for (int m = 0; m < 3; m++) {
            inputs in;
            inputs_make(&in, &cases[0], masks[mk], 45);
            us_unisparse_params p = params(64);
            us_method method = methods[m];
            if (method == US_METHOD_XATTENTION) { /* whole blocks, as antidiagonals see them */
                plant_in(&in, 0, 4 * 64, 5 * 64, 8.0f);
                plant_in(&in, 1, 3 * 64, 4 * 64, 8.0f);
                p.xattn_tau = 0.8f;
            } else {
                plant_in(&in, 0, col0, col0 + 1, 8.0f);
                plant_in(&in, 1, col1, col1 + 1, 8.0f);
                p.mi_vertical = 32; /* the 30 forced first columns and two chosen */
                p.mi_slash = 100;
                p.flex_delta = 0.0f;
                p.flex_gamma = 0.001f;
                p.flex_min_budget = 0;
            }
            us_selection *sel = select_ok(method, &in.a, &p);
            assert_keeps_column_in(sel, &in.a, col0, 0, 2, us_method_name(method));
            assert_keeps_column_in(sel, &in.a, col1, 2, 4, us_method_name(method));
            us_selection_free(&sel);
            inputs_free(&in);
        }
}

/* Output rel. error ||o - o_dense|| / ||o_dense||. */
static double rel_diff(const float *x, const float *y, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double dlt = (double)x[i] - (double)y[i];
        num += dlt * dlt;
        den += (double)y[i] * y[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

Test(baselines, keep_all_parameters_equal_dense)
{
    us_unisparse_params p = params(64);
    p.xattn_tau = 1.0f;
    p.flex_gamma = 1.0f;
    p.flex_min_budget = 1 << 30;
    p.mi_vertical = 1 << 30;
    p.mi_slash = 1 << 30;
    p.ashape_local_tokens = 1 << 30;
    for (int c = 0; c < N_CASES; c++)
        for (int mk = 0; mk < 3; mk++) {
            inputs in;
            inputs_make(&in, &cases[c], masks[mk], 80);
            us_error err = {0};
            us_attn_args ad = in.a;
            ad.o = us_tensor_3d(in.o_dense, US_F32, HQ, cases[c].nq, D);
            cr_assert_eq(us_attention_dense(&ad, &err), US_OK, "%s", err.msg);
            for (int m = 0; m < 4; m++)
                for (int delta = 0; delta < 2; delta++) { /* FlexPrefill in both of its modes */
                    if (delta && methods[m] != US_METHOD_FLEXPREFILL) continue;
                    /* A-shape's window looks back only: all of a non-causal mask is out of reach */
                    if (methods[m] == US_METHOD_ASHAPE && masks[mk] != US_MASK_CAUSAL) continue;
                    p.flex_delta = delta ? 1.0f : 0.0f;
                    us_selection *sel = select_ok(methods[m], &in.a, &p);
                    for (int64_t r = 0; r < (int64_t)sel->n_heads * sel->n_qblocks; r++)
                        cr_assert_eq(sel->counts[r], sel->visible[r % sel->n_qblocks], "%s mask %s row %lld",
                                     us_method_name(methods[m]), us_mask_kind_name(masks[mk]), (long long)r);
                    memset(in.o, 0, (size_t)(HQ * cases[c].nq * D) * sizeof(float));
                    cr_assert_eq(us_attention_sparse(&in.a, sel, &err), US_OK, "%s", err.msg);
                    double e = rel_diff(in.o, in.o_dense, HQ * cases[c].nq * D);
                    cr_assert(e <= 1e-6, "%s case %d mask %s: rel err %g", us_method_name(methods[m]), c,
                              us_mask_kind_name(masks[mk]), e);
                    us_selection_free(&sel);
                }
            inputs_free(&in);
        }
}

Test(baselines, rejects_bad_parameters)
{
    inputs in;
    inputs_make(&in, &cases[0], US_MASK_CAUSAL, 90);
    us_unisparse_params p = params(64);
    p.xattn_stride = 5;
    us_error err = {0};
    us_selection *sel = NULL;
    cr_assert_eq(us_select(US_METHOD_XATTENTION, &in.a, &p, &sel, &err), US_ERR_INVALID);
    cr_assert_null(sel);
    cr_assert(strstr(err.msg, "xattn_stride") != NULL, "%s", err.msg);
    inputs_free(&in);
}
