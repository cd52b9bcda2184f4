/* test_attention_dense.c: the CPU kernel against an independent float64 reference, over dtypes,
 * GQA, head dims, every mask kind, query offsets, ragged lengths and the LSE output. */
#include "reference.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int hq, hkv, nq, nk, d;
    us_dtype dtype;
    us_mask_kind mask;
    int64_t q_offset; /* -1: Nk - Nq */
} dense_case;

static void *make_tensor(const float *src, int64_t n, us_dtype t)
{
    void *buf = malloc((size_t)n * us_dtype_size(t));
    for (int64_t i = 0; i < n; i++) {
        if (t == US_F32) ((float *)buf)[i] = src[i];
        if (t == US_F16) ((uint16_t *)buf)[i] = us_f32_to_f16(src[i]);
        if (t == US_BF16) ((uint16_t *)buf)[i] = us_f32_to_bf16(src[i]);
    }
    return buf;
}

static const us_span test_spans[] = {{5, 37}, {60, 61}, {90, 150}};

/* Runs one case through us_attention_dense and the float64 reference; returns rel errors. */
static void run_case(dense_case c, uint64_t seed, double *o_err, double *lse_err)
{
    int64_t nq_el = (int64_t)c.hq * c.nq * c.d, nk_el = (int64_t)c.hkv * c.nk * c.d;
    float *qf = malloc((size_t)nq_el * 4), *kf = malloc((size_t)nk_el * 4), *vf = malloc((size_t)nk_el * 4);
    ref_fill_gaussian(qf, nq_el, seed, 1.0f);
    ref_fill_gaussian(kf, nk_el, seed + 1, 1.0f);
    ref_fill_gaussian(vf, nk_el, seed + 2, 1.0f);
    void *q = make_tensor(qf, nq_el, c.dtype), *k = make_tensor(kf, nk_el, c.dtype), *v = make_tensor(vf, nk_el, c.dtype);
    float *o = malloc((size_t)nq_el * 4), *lse = malloc((size_t)c.hq * c.nq * 4);
    for (int64_t i = 0; i < nq_el; i++) o[i] = NAN; /* poison: every element must be written */
    for (int64_t i = 0; i < (int64_t)c.hq * c.nq; i++) lse[i] = NAN;
    us_attn_args a = us_attn_args_default();
    a.q = us_tensor_3d(q, c.dtype, c.hq, c.nq, c.d);
    a.k = us_tensor_3d(k, c.dtype, c.hkv, c.nk, c.d);
    a.v = us_tensor_3d(v, c.dtype, c.hkv, c.nk, c.d);
    a.o = us_tensor_3d(o, US_F32, c.hq, c.nq, c.d);
    a.lse = lse;
    a.q_offset = c.q_offset;
    a.mask.kind = c.mask;
    if (c.mask == US_MASK_CAUSAL_SPANS) {
        a.mask.spans = test_spans;
        a.mask.n_spans = 3;
    }
    us_error err;
    cr_assert_eq(us_attention_dense(&a, &err), US_OK, "%s", err.msg);
    double *ro = malloc((size_t)nq_el * 8), *rl = malloc((size_t)c.hq * c.nq * 8);
    ref_attention_f64(&a, ro, rl);
    for (int64_t i = 0; i < nq_el; i++) cr_assert(isfinite(o[i]), "o[%lld] not written", (long long)i);
    *o_err = ref_rel_err(o, ro, nq_el);
    /* LSE in nats: an absolute error (a relative one is meaningless near lse = 0) */
    double worst = 0;
    for (int64_t i = 0; i < (int64_t)c.hq * c.nq; i++) worst = fmax(worst, fabs(lse[i] - rl[i]));
    *lse_err = worst;
    free(qf), free(kf), free(vf), free(q), free(k), free(v), free(o), free(lse), free(ro), free(rl);
}

static void expect(dense_case c, double tol)
{
    double oe, le;
    run_case(c, (uint64_t)(c.nq * 31 + c.d + c.mask), &oe, &le);
    cr_expect_lt(oe, tol, "hq=%d hkv=%d nq=%d nk=%d d=%d dtype=%s mask=%s off=%lld: rel err %.3g", c.hq, c.hkv, c.nq,
                 c.nk, c.d, us_dtype_name(c.dtype), us_mask_kind_name(c.mask), (long long)c.q_offset, oe);
    cr_expect_lt(le, 5e-5, "lse max abs err %.3g nats", le);
}

/* fp32 inputs: the fp32 kernel must sit at fp32 rounding of the float64 result. */
Test(dense, f32_causal_matches_float64)
{
    expect((dense_case){2, 2, 300, 300, 64, US_F32, US_MASK_CAUSAL, -1}, 2e-5);
}

Test(dense, head_dims_64_128_256_and_40)
{
    int dims[] = {64, 128, 256, 40};
    for (int i = 0; i < 4; i++) expect((dense_case){2, 1, 150, 150, dims[i], US_F32, US_MASK_CAUSAL, -1}, 2e-5);
}

Test(dense, gqa_groups)
{
    expect((dense_case){8, 2, 200, 200, 64, US_F32, US_MASK_CAUSAL, -1}, 2e-5);
    expect((dense_case){6, 1, 130, 130, 64, US_F32, US_MASK_CAUSAL, -1}, 2e-5);
}

Test(dense, every_mask_kind)
{
    expect((dense_case){2, 1, 257, 257, 64, US_F32, US_MASK_BIDIRECTIONAL, -1}, 2e-5);
    expect((dense_case){2, 1, 257, 257, 64, US_F32, US_MASK_CAUSAL_SPANS, -1}, 2e-5);
}

Test(dense, query_offset_chunked_prefill)
{
    expect((dense_case){2, 1, 70, 333, 64, US_F32, US_MASK_CAUSAL, -1}, 2e-5);   /* last 70 queries */
    expect((dense_case){2, 1, 70, 333, 64, US_F32, US_MASK_CAUSAL, 100}, 2e-5);  /* a middle chunk */
    expect((dense_case){2, 1, 64, 333, 64, US_F32, US_MASK_CAUSAL_SPANS, 60}, 2e-5);
}

Test(dense, ragged_lengths)
{
    int lens[] = {1, 7, 127, 129, 255, 385};
    for (int i = 0; i < 6; i++) expect((dense_case){1, 1, lens[i], lens[i], 64, US_F32, US_MASK_CAUSAL, -1}, 2e-5);
}

/* Half-precision inputs are converted exactly to f32, so the reference sees the same values. */
Test(dense, f16_and_bf16_inputs)
{
    expect((dense_case){4, 2, 200, 200, 128, US_F16, US_MASK_CAUSAL, -1}, 2e-5);
    expect((dense_case){4, 2, 200, 200, 128, US_BF16, US_MASK_CAUSAL_SPANS, -1}, 2e-5);
}

Test(dense, half_precision_conversions_round_to_nearest_even)
{
    /* values chosen from the formats' definitions */
    cr_assert_eq(us_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(us_f32_to_bf16(1.00390625f), 0x3f80);      /* halfway, even below */
    cr_assert_eq(us_f32_to_bf16(1.01171875f), 0x3f82);      /* halfway, even above */
    cr_assert_eq(us_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(us_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(us_f32_to_f16(65520.0f), 0x7c00);          /* rounds to inf */
    cr_assert_eq(us_f32_to_f16(5.9604645e-08f), 0x0001);    /* smallest subnormal */
    cr_assert_float_eq(us_f16_to_f32(0x0001), 5.9604645e-08f, 1e-15);
    cr_assert_float_eq(us_f16_to_f32(0xc000), -2.0f, 0);
    for (uint32_t h = 0; h < 0x7c00; h += 7) cr_assert_eq(us_f32_to_f16(us_f16_to_f32((uint16_t)h)), h);
}

Test(dense, output_in_bf16_and_strided_views)
{
    /* o in bf16, q as a strided view into a wider buffer: the kernel honours dtype and strides */
    int hq = 2, n = 100, d = 64;
    float *qwide = malloc((size_t)hq * n * 2 * d * 4), *k = malloc((size_t)n * d * 4), *v = malloc((size_t)n * d * 4);
    ref_fill_gaussian(qwide, (int64_t)hq * n * 2 * d, 5, 1.0f);
    ref_fill_gaussian(k, (int64_t)n * d, 6, 1.0f);
    ref_fill_gaussian(v, (int64_t)n * d, 7, 1.0f);
    uint16_t *o = malloc((size_t)hq * n * d * 2);
    us_attn_args a = us_attn_args_default();
    a.q = (us_tensor){qwide, US_F32, {hq, n, d}, {(int64_t)n * 2 * d, 2 * d, 1}};
    a.k = us_tensor_3d(k, US_F32, 1, n, d);
    a.v = us_tensor_3d(v, US_F32, 1, n, d);
    a.o = us_tensor_3d(o, US_BF16, hq, n, d);
    us_error err;
    cr_assert_eq(us_attention_dense(&a, &err), US_OK, "%s", err.msg);
    double *ro = malloc((size_t)hq * n * d * 8);
    ref_attention_f64(&a, ro, NULL);
    float *of = malloc((size_t)hq * n * d * 4);
    for (int i = 0; i < hq * n * d; i++) of[i] = us_bf16_to_f32(o[i]);
    cr_expect_lt(ref_rel_err(of, ro, (int64_t)hq * n * d), 4e-3); /* bf16 output rounding */
    free(qwide), free(k), free(v), free(o), free(ro), free(of);
}
