/* test_gpu_selectors.c: the XAttention and FlexPrefill selectors on the GPU
 * (kernels/estimate_xattention.cu, estimate_flexprefill.cu) against their CPU selectors on the same
 * bf16 / f16 inputs, and the whole GPU call (estimation, selection, attention) against the CPU.
 *
 * Selections: every GPU row passes the selection invariants and at least 99% of the rows keep
 * exactly the CPU's blocks. Rows may differ only where fp32 sums of different order fall on either
 * side of a threshold: XAttention's antidiagonal logits are accumulated in another order (and scaled
 * after the sum instead of before), FlexPrefill's sampled probabilities use ex2.approx instead of
 * the CPU's polynomial and its diagonal sums add tiles in another order; a column or diagonal at
 * the gamma boundary can then flip, which changes every row that sees it by one block. The kept
 * totals must agree within 0.5%.
 * End to end: the GPU output over the GPU's selection must match the CPU kernel over that same
 * selection (bf16 rounding only: rel_err < 1.2e-2, f16 < 2e-3, every element written, LSE within
 * 2e-2), and the GPU output must match the CPU's whole pipeline (its own selection) within the same
 * tolerance where the selections agree.
 * Covers every mask kind, query offsets, ragged lengths, GQA, head dims 64 / 128 / 256, blocks 64
 * and 128, strides 4 / 8 / 16, tau / gamma 1 (keep all), both FlexPrefill patterns (delta 0 forces
 * vertical-slash, delta 1 query-aware, 0.1 decides per head), floors, token-major layouts,
 * repeated calls (bit-identical) and CUDA graph capture. Without CUDA or a GPU every test skips
 * with the reason. */
#include "reference.h"
#include "unisparse/attention.h"
#include "unisparse/synthetic.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef US_HAVE_CUDA
#include "gpu_check.h"
#include "unisparse_cuda.h"


#define GAUSS -1
#define C_ US_MASK_CAUSAL
#define B_ US_MASK_BIDIRECTIONAL
#define SP_ US_MASK_CAUSAL_SPANS
#define XA US_METHOD_XATTENTION
#define FP US_METHOD_FLEXPREFILL

typedef struct {
    const char *name;
    us_method method;
    int hq, hkv, nq, nk, d;
    us_mask_kind mask;
    int64_t q_offset; /* -1: Nk - Nq */
    int block;
    us_dtype dtype;
    int syn;          /* -1: Gaussian; else a us_synthetic_kind (needs nq == nk) */
    int token_major;  /* [n, h, d] storage */
    float thr;        /* xattn_tau or flex_gamma (0: default) */
    int stride;       /* xattn_stride (0: default) */
    float delta;      /* flex_delta (< 0: default) */
    int last_q;       /* flex_last_q (0: default) */
    int min_blocks, local_blocks, max_blocks, sink_blocks; /* sink 0: default */
} scase;

static const us_span test_spans[] = {{3, 40}, {200, 330}, {600, 601}, {1500, 1800}};

static uint16_t to_half(float x, us_dtype t) { return t == US_BF16 ? us_f32_to_bf16(x) : us_f32_to_f16(x); }
static float from_half(uint16_t x, us_dtype t) { return t == US_BF16 ? us_bf16_to_f32(x) : us_f16_to_f32(x); }

/* A [h, n, d] tensor (or [n, h, d] storage when token_major) from contiguous f32 src. */
static uint16_t *make_tensor(const scase *c, const float *src, int h, int n, int d, us_tensor *t)
{
    int64_t hs = c->token_major ? d : (int64_t)n * d, ts = c->token_major ? (int64_t)h * d : d;
    uint16_t *x = malloc((size_t)h * n * d * 2);
    cr_assert_not_null(x);
    for (int a = 0; a < h; a++)
        for (int j = 0; j < n; j++)
            for (int e = 0; e < d; e++) x[a * hs + j * ts + e] = to_half(src[((int64_t)a * n + j) * d + e], c->dtype);
    t->data = x;
    t->dtype = c->dtype;
    t->shape[0] = h, t->shape[1] = n, t->shape[2] = d;
    t->stride[0] = hs, t->stride[1] = ts, t->stride[2] = 1;
    return x;
}

typedef struct {
    us_attn_args host, dev;
    uint16_t *hq_, *hk_, *hv_;
    void *dq, *dk, *dv, *dout;
    float *dlse;
    us_unisparse_params p;
} prepared;

static prepared prepare(const scase *c)
{
    prepared pr;
    memset(&pr, 0, sizeof pr);
    const int64_t nq_el = (int64_t)c->hq * c->nq * c->d, nk_el = (int64_t)c->hkv * c->nk * c->d;
    float *q = malloc((size_t)nq_el * 4), *k = malloc((size_t)nk_el * 4), *v = malloc((size_t)nk_el * 4);
    cr_assert(q && k && v);
    if (c->syn >= 0) {
        cr_assert_eq(c->nq, c->nk, "%s: synthetic inputs need Nq = Nk", c->name);
        us_error err;
        cr_assert_eq(us_synthetic_qkv((us_synthetic_kind)c->syn, c->nq, c->hq, c->hkv, c->d, 42, q, k, v, NULL, NULL,
                                      &err),
                     US_OK, "%s", err.msg);
    } else {
        ref_fill_gaussian(q, nq_el, 1234 + (uint64_t)c->nq, 1.0f);
        ref_fill_gaussian(k, nk_el, 99 + (uint64_t)c->nk, 1.0f);
        ref_fill_gaussian(v, nk_el, 7 + (uint64_t)c->nk, 1.0f);
    }
    us_attn_args a = us_attn_args_default();
    pr.hq_ = make_tensor(c, q, c->hq, c->nq, c->d, &a.q);
    pr.hk_ = make_tensor(c, k, c->hkv, c->nk, c->d, &a.k);
    pr.hv_ = make_tensor(c, v, c->hkv, c->nk, c->d, &a.v);
    free(q), free(k), free(v);
    a.o = us_tensor_3d(NULL, US_F32, c->hq, c->nq, c->d); /* set by the callers */
    a.q_offset = c->q_offset;
    a.mask.kind = c->mask;
    if (c->mask == US_MASK_CAUSAL_SPANS) {
        a.mask.spans = test_spans;
        a.mask.n_spans = 0;
        for (int s = 0; s < 4; s++)
            if (test_spans[s].end <= c->nk) a.mask.n_spans = s + 1;
    }
    pr.host = a;
    CUDA_OK(cudaMalloc(&pr.dq, (size_t)nq_el * 2));
    CUDA_OK(cudaMalloc(&pr.dk, (size_t)nk_el * 2));
    CUDA_OK(cudaMalloc(&pr.dv, (size_t)nk_el * 2));
    CUDA_OK(cudaMalloc(&pr.dout, (size_t)nq_el * 2));
    CUDA_OK(cudaMalloc((void **)&pr.dlse, (size_t)c->hq * c->nq * 4));
    CUDA_OK(cudaMemcpy(pr.dq, pr.hq_, (size_t)nq_el * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(pr.dk, pr.hk_, (size_t)nk_el * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(pr.dv, pr.hv_, (size_t)nk_el * 2, cudaMemcpyHostToDevice));
    pr.dev = a;
    pr.dev.q.data = pr.dq, pr.dev.k.data = pr.dk, pr.dev.v.data = pr.dv;
    pr.dev.o = us_tensor_3d(pr.dout, c->dtype, c->hq, c->nq, c->d);
    pr.dev.lse = pr.dlse;
    pr.p = us_unisparse_params_default();
    pr.p.gpu_min_gflop = 0; /* the estimator itself, also on small inputs */
    pr.p.block = c->block;
    if (c->thr > 0.0f) pr.p.xattn_tau = pr.p.flex_gamma = c->thr;
    if (c->stride) pr.p.xattn_stride = c->stride;
    if (c->delta >= 0.0f) pr.p.flex_delta = c->delta;
    if (c->last_q) pr.p.flex_last_q = c->last_q;
    pr.p.min_blocks = c->min_blocks, pr.p.local_blocks = c->local_blocks, pr.p.max_blocks = c->max_blocks;
    if (c->sink_blocks) pr.p.sink_blocks = c->sink_blocks;
    return pr;
}

static void release(prepared *pr)
{
    cudaFree(pr->dq), cudaFree(pr->dk), cudaFree(pr->dv), cudaFree(pr->dout), cudaFree(pr->dlse);
    free(pr->hq_), free(pr->hk_), free(pr->hv_);
}

static int rows_equal(const us_selection *x, const us_selection *y, int64_t r)
{
    if (x->counts[r] != y->counts[r]) return 0;
    return !memcmp(x->indices + x->row_offset[r], y->indices + y->row_offset[r], (size_t)x->counts[r] * sizeof(int32_t));
}

static int selections_identical(const us_selection *x, const us_selection *y)
{
    for (int64_t r = 0; r < (int64_t)x->n_heads * x->n_qblocks; r++)
        if (!rows_equal(x, y, r)) return 0;
    return 1;
}

/* CPU attention (f32 output) over sel; o and lse are allocated here. */
static void cpu_attention(const prepared *pr, const scase *c, const us_selection *sel, float **o, float **lse)
{
    *o = malloc((size_t)c->hq * c->nq * c->d * 4);
    *lse = malloc((size_t)c->hq * c->nq * 4);
    cr_assert(*o && *lse);
    us_attn_args a = pr->host;
    a.o = us_tensor_3d(*o, US_F32, c->hq, c->nq, c->d);
    a.lse = *lse;
    us_error err;
    cr_assert_eq(us_attention_sparse(&a, sel, &err), US_OK, "%s: CPU attention: %s", c->name, err.msg);
}

/* rel_err of the GPU output (half) against o_ref (f32); counts unwritten (NaN) elements. */
static double compare_out(const scase *c, const uint16_t *out, const float *lse, const float *o_ref,
                          const float *lse_ref, int64_t *unwritten, double *lse_worst)
{
    const int64_t n = (int64_t)c->hq * c->nq * c->d;
    double num = 0, den = 0;
    *unwritten = 0, *lse_worst = 0;
    for (int64_t i = 0; i < n; i++) {
        float x = from_half(out[i], c->dtype);
        if (isnan(x)) (*unwritten)++;
        num += (double)(x - o_ref[i]) * (x - o_ref[i]);
        den += (double)o_ref[i] * o_ref[i];
    }
    for (int64_t i = 0; i < (int64_t)c->hq * c->nq; i++) {
        if (isnan(lse[i])) (*unwritten)++;
        if (isinf(lse_ref[i]) && lse[i] == lse_ref[i]) continue;
        *lse_worst = fmax(*lse_worst, fabs((double)lse[i] - lse_ref[i]));
    }
    return den > 0 ? sqrt(num / den) : 0.0;
}

static void run_case(const scase *c)
{
    prepared pr = prepare(c);
    us_error err;
    us_selection *cpu = NULL, *gpu = NULL, *gpu2 = NULL;
    {
        us_attn_args ha = pr.host;
        ha.o = ha.q; /* selectors only read o's shape */
        cr_assert_eq(us_select(c->method, &ha, &pr.p, &cpu, &err), US_OK, "%s: CPU: %s", c->name, err.msg);
    }
    us_cuda_plan *plan = NULL;
    cr_assert_eq(us_cuda_plan_create(c->method, &pr.dev, &pr.p, &plan, &err), US_OK, "%s: plan: %s", c->name, err.msg);
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreate(&stream));
    /* the whole call into poisoned outputs */
    const int64_t nq_el = (int64_t)c->hq * c->nq * c->d;
    uint16_t *out = malloc((size_t)nq_el * 2);
    float *lse = malloc((size_t)c->hq * c->nq * 4);
    cr_assert(out && lse);
    for (int64_t i = 0; i < nq_el; i++) out[i] = 0x7fc1; /* a NaN in both formats */
    for (int64_t i = 0; i < (int64_t)c->hq * c->nq; i++) lse[i] = NAN;
    CUDA_OK(cudaMemcpy(pr.dout, out, (size_t)nq_el * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(pr.dlse, lse, (size_t)c->hq * c->nq * 4, cudaMemcpyHostToDevice));
    cr_assert_eq(us_cuda_attention(plan, &pr.dev, stream, &err), US_OK, "%s: GPU: %s", c->name, err.msg);
    CUDA_OK(cudaStreamSynchronize(stream));
    cr_assert_eq(us_cuda_plan_selection(plan, &gpu, &err), US_OK, "%s: %s", c->name, err.msg);
    CUDA_OK(cudaMemcpy(out, pr.dout, (size_t)nq_el * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(lse, pr.dlse, (size_t)c->hq * c->nq * 4, cudaMemcpyDeviceToHost));
    /* a second selection reuses the scratch and gives the same answer bit for bit */
    cr_assert_eq(us_cuda_select(plan, &pr.dev, stream, &err), US_OK, "%s: GPU select again: %s", c->name, err.msg);
    CUDA_OK(cudaStreamSynchronize(stream));
    cr_assert_eq(us_cuda_plan_selection(plan, &gpu2, &err), US_OK, "%s: %s", c->name, err.msg);
    cr_expect(selections_identical(gpu, gpu2), "%s: two GPU calls differ", c->name);

    cr_assert_eq(gpu->n_heads, cpu->n_heads, "%s", c->name);
    cr_assert_eq(gpu->n_qblocks, cpu->n_qblocks, "%s", c->name);
    {
        us_attn_args ha = pr.host;
        ha.o = ha.q;
        cr_expect_eq(us_selection_check(gpu, &ha, 1, &err), US_OK, "%s: GPU selection: %s", c->name, err.msg);
    }
    const int64_t rows = (int64_t)cpu->n_heads * cpu->n_qblocks;
    int64_t same = 0, kept_cpu = 0, kept_gpu = 0;
    int shown = 0;
    for (int64_t r = 0; r < rows; r++) {
        kept_cpu += cpu->counts[r], kept_gpu += gpu->counts[r];
        if (rows_equal(cpu, gpu, r))
            same++;
        else if (shown++ < 3)
            fprintf(stderr, "%s: row %lld (head %lld, qblock %lld): CPU keeps %d, GPU %d of %d visible\n", c->name,
                    (long long)r, (long long)(r / cpu->n_qblocks), (long long)(r % cpu->n_qblocks), cpu->counts[r],
                    gpu->counts[r], cpu->visible[r % cpu->n_qblocks]);
    }
    const double frac = (double)same / (double)rows;
    cr_expect_geq(frac, 0.99, "%s: only %lld of %lld rows identical", c->name, (long long)same, (long long)rows);
    cr_expect_leq(fabs((double)(kept_gpu - kept_cpu)), 0.005 * (double)kept_cpu + 0.5, "%s: kept blocks CPU %lld GPU %lld",
                  c->name, (long long)kept_cpu, (long long)kept_gpu);
    if (c->thr >= 1.0f) cr_expect_eq(same, rows, "%s: a threshold of 1 keeps everything", c->name);

    /* the kernel: GPU output against the CPU kernel over the GPU's own selection */
    const double tol = c->dtype == US_BF16 ? 1.2e-2 : 2e-3;
    float *o_ref, *lse_ref;
    cpu_attention(&pr, c, gpu, &o_ref, &lse_ref);
    int64_t unwritten;
    double lse_worst, rel = compare_out(c, out, lse, o_ref, lse_ref, &unwritten, &lse_worst);
    cr_expect_eq(unwritten, 0, "%s: %lld outputs not written", c->name, (long long)unwritten);
    cr_expect_lt(rel, tol, "%s: GPU vs CPU kernel on the GPU selection: rel_err %.3g", c->name, rel);
    cr_expect_lt(lse_worst, 2e-2, "%s: lse max abs err %.3g", c->name, lse_worst);
    free(o_ref), free(lse_ref);
    /* end to end: GPU pipeline against the CPU pipeline */
    cpu_attention(&pr, c, cpu, &o_ref, &lse_ref);
    double rel_e2e = compare_out(c, out, lse, o_ref, lse_ref, &unwritten, &lse_worst);
    if (same == rows) cr_expect_lt(rel_e2e, tol, "%s: end to end rel_err %.3g", c->name, rel_e2e);
    fprintf(stderr, "%-34s rows %6lld identical %7.3f%%  kept CPU %lld GPU %lld  rel_err kernel %.2e e2e %.2e (%s)\n",
            c->name, (long long)rows, 100.0 * frac, (long long)kept_cpu, (long long)kept_gpu, rel, rel_e2e,
            us_cuda_plan_kernel_name(plan, &pr.dev));
    free(o_ref), free(lse_ref);

    us_selection_free(&cpu), us_selection_free(&gpu), us_selection_free(&gpu2);
    us_cuda_plan_free(&plan);
    CUDA_OK(cudaStreamDestroy(stream));
    free(out), free(lse);
    release(&pr);
}

static void run_cases(const scase *cs, int n)
{
    require_gpu();
    for (int i = 0; i < n; i++) run_case(&cs[i]);
}

/*                     name                        meth hq hkv  nq    nk    d   mask off  S   dtype     syn  tm thr  st delta lq min loc max sink */
Test(gpu_selectors, xattention_masks_dtypes_strides)
{
    const scase cs[] = {
        {"xattn causal bf16", XA, 8, 2, 3000, 3000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn causal f16 stride 16", XA, 4, 2, 2500, 2500, 128, C_, -1, 128, US_F16, GAUSS, 0, 0, 16, -1, 0, 0, 0, 0, 0},
        {"xattn stride 4 block 64", XA, 4, 1, 1500, 1500, 64, C_, -1, 64, US_BF16, GAUSS, 0, 0, 4, -1, 0, 0, 0, 0, 0},
        {"xattn bidirectional", XA, 4, 1, 1000, 1000, 128, B_, -1, 128, US_BF16, GAUSS, 0, 0.95f, 0, -1, 0, 0, 0, 0, 0},
        {"xattn spans d 64", XA, 8, 2, 2000, 2000, 64, SP_, -1, 64, US_F16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn offset Nq<Nk", XA, 8, 2, 1000, 3000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn offset 700 spans", XA, 4, 2, 777, 2000, 128, SP_, 700, 64, US_BF16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn ragged 3001 d 256", XA, 4, 2, 3001, 3001, 256, C_, -1, 128, US_F16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn tiny 100", XA, 2, 1, 100, 100, 64, C_, -1, 64, US_BF16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn long 10000 (chunks)", XA, 2, 1, 10000, 40000, 64, C_, -1, 128, US_BF16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn tau 1 keeps all", XA, 4, 2, 2000, 2000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 1.0f, 0, -1, 0, 0, 0, 0, 0},
        /* 4 and 32 composite keys per block: the shared-memory and the widest register reduction */
        {"xattn stride 16 block 64 (G 4)", XA, 4, 2, 3000, 3000, 128, C_, -1, 64, US_BF16, US_SYN_MIXED, 0, 0, 16, -1, 0, 0, 0, 0, 0},
        {"xattn stride 4 block 128 (G 32)", XA, 4, 2, 3000, 3000, 64, SP_, -1, 128, US_F16, GAUSS, 0, 0, 4, -1, 0, 0, 0, 0, 0},
    };
    run_cases(cs, (int)(sizeof cs / sizeof cs[0]));
}

Test(gpu_selectors, xattention_structured_layouts_floors)
{
    const scase cs[] = {
        {"xattn mixed bf16", XA, 8, 2, 4096, 4096, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn mixed block 64 f16", XA, 8, 2, 4096, 4096, 128, C_, -1, 64, US_F16, US_SYN_MIXED, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn slash d 256", XA, 4, 2, 2500, 2500, 256, C_, -1, 128, US_BF16, US_SYN_SLASH, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn vertical stride 16", XA, 4, 1, 3000, 3000, 128, C_, -1, 128, US_BF16, US_SYN_VERTICAL, 0, 0, 16, -1, 0, 0, 0, 0, 0},
        {"xattn token-major", XA, 8, 2, 2000, 2000, 128, C_, -1, 128, US_BF16, GAUSS, 1, 0, 0, -1, 0, 0, 0, 0, 0},
        {"xattn floors local 2 min 6", XA, 4, 2, 3000, 3000, 128, C_, -1, 64, US_BF16, US_SYN_MIXED, 0, 0.5f, 0, -1, 0, 6, 2, 0, 0},
        {"xattn max 4 sink 2", XA, 4, 2, 3000, 3000, 128, C_, -1, 64, US_F16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 4, 2},
    };
    run_cases(cs, (int)(sizeof cs / sizeof cs[0]));
}

Test(gpu_selectors, flexprefill_patterns_masks_dtypes)
{
    const scase cs[] = {
        {"flex mixed bf16 (decides)", FP, 8, 2, 4096, 4096, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"flex mixed vertical-slash", FP, 8, 2, 4096, 4096, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex mixed query-aware", FP, 8, 2, 4096, 4096, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, 1.0f, 0, 0, 0, 0, 0},
        {"flex gauss f16 (decides)", FP, 4, 2, 3000, 3000, 128, C_, -1, 128, US_F16, GAUSS, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"flex vs d 64 block 64", FP, 4, 1, 2000, 2000, 64, C_, -1, 64, US_BF16, US_SYN_SLASH, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex vs d 256", FP, 4, 2, 2500, 2500, 256, C_, -1, 128, US_F16, US_SYN_VERTICAL, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex qa d 256 block 64", FP, 4, 2, 2500, 2500, 256, C_, -1, 64, US_BF16, US_SYN_MIXED, 0, 0, 0, 1.0f, 0, 0, 0, 0, 0},
        {"flex bidirectional vs", FP, 4, 1, 1000, 1000, 128, B_, -1, 128, US_BF16, GAUSS, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex spans qa", FP, 8, 2, 2000, 2000, 64, SP_, -1, 64, US_F16, GAUSS, 0, 0, 0, 1.0f, 0, 0, 0, 0, 0},
        {"flex spans vs", FP, 8, 2, 2000, 2000, 128, SP_, -1, 128, US_BF16, US_SYN_SINKS, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
    };
    run_cases(cs, (int)(sizeof cs / sizeof cs[0]));
}

Test(gpu_selectors, flexprefill_offsets_samples_floors)
{
    const scase cs[] = {
        {"flex offset Nq<Nk vs", FP, 8, 2, 1000, 3000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex offset 700 qa", FP, 4, 2, 777, 2000, 128, SP_, 700, 64, US_BF16, GAUSS, 0, 0, 0, 1.0f, 0, 0, 0, 0, 0},
        {"flex ragged 3001 vs", FP, 4, 2, 3001, 3001, 64, C_, -1, 128, US_F16, US_SYN_NEEDLES, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex last_q 64", FP, 4, 2, 3000, 3000, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, -1, 64, 0, 0, 0, 0},
        {"flex last_q 37 vs", FP, 4, 2, 3000, 3000, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, 0.0f, 37, 0, 0, 0, 0},
        {"flex Nq 50 < last_q", FP, 4, 2, 50, 3000, 128, C_, -1, 64, US_BF16, GAUSS, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex gamma 1 keeps all", FP, 4, 2, 2000, 2000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 1.0f, 0, 1.0f, 0, 0, 0, 0, 0},
        {"flex gamma 1 vs", FP, 4, 2, 2000, 2000, 128, C_, -1, 128, US_BF16, GAUSS, 0, 1.0f, 0, 0.0f, 0, 0, 0, 0, 0},
        {"flex gamma 0.5 min 8", FP, 4, 2, 4096, 4096, 128, C_, -1, 64, US_BF16, US_SYN_MIXED, 0, 0.5f, 0, -1, 0, 8, 0, 0, 0},
        {"flex qa local 2 max 5", FP, 4, 2, 3000, 3000, 128, C_, -1, 64, US_F16, US_SYN_MIXED, 0, 0, 0, 1.0f, 0, 0, 2, 5, 0},
        {"flex token-major", FP, 8, 2, 2000, 2000, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 1, 0, 0, -1, 0, 0, 0, 0, 0},
        {"flex long 20000 vs", FP, 2, 1, 20000, 20000, 64, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, 0.0f, 0, 0, 0, 0, 0},
    };
    run_cases(cs, (int)(sizeof cs / sizeof cs[0]));
}

/* Both estimators and the attention after them, captured in one CUDA graph, replay to the direct
 * call's output: nothing in them synchronises with the host. */
Test(gpu_selectors, graph_capture_replays_the_whole_call)
{
    require_gpu();
    const us_method ms[] = {XA, FP};
    for (int mi = 0; mi < 2; mi++) {
        const scase c = {"graph", ms[mi], 8, 2, 3000, 3000, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, -1, 0, 0, 0, 0, 0};
        prepared pr = prepare(&c);
        us_error err;
        us_cuda_plan *plan = NULL;
        cr_assert_eq(us_cuda_plan_create(c.method, &pr.dev, &pr.p, &plan, &err), US_OK, "%s", err.msg);
        cudaStream_t stream;
        CUDA_OK(cudaStreamCreate(&stream));
        /* the first call allocates the scratch; the captured one must queue work only */
        cr_assert_eq(us_cuda_attention(plan, &pr.dev, stream, &err), US_OK, "%s", err.msg);
        CUDA_OK(cudaStreamSynchronize(stream));
        const size_t ob = (size_t)c.hq * c.nq * c.d * 2;
        uint16_t *o1 = malloc(ob), *o2 = malloc(ob);
        CUDA_OK(cudaMemcpy(o1, pr.dout, ob, cudaMemcpyDeviceToHost));
        us_selection *ref = NULL, *replay = NULL;
        cr_assert_eq(us_cuda_plan_selection(plan, &ref, &err), US_OK, "%s", err.msg);
        CUDA_OK(cudaMemset(pr.dout, 0xff, ob));
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        us_status s = us_cuda_attention(plan, &pr.dev, stream, &err);
        CUDA_OK(cudaStreamEndCapture(stream, &graph));
        cr_assert_eq(s, US_OK, "captured %s: %s", us_method_name(c.method), err.msg);
        CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
        CUDA_OK(cudaGraphLaunch(exec, stream));
        CUDA_OK(cudaStreamSynchronize(stream));
        CUDA_OK(cudaMemcpy(o2, pr.dout, ob, cudaMemcpyDeviceToHost));
        cr_assert_eq(us_cuda_plan_selection(plan, &replay, &err), US_OK, "%s", err.msg);
        cr_expect(selections_identical(ref, replay), "%s: the graph replay's selection differs", us_method_name(c.method));
        cr_expect_eq(memcmp(o1, o2, ob), 0, "%s: the graph replay's output differs", us_method_name(c.method));
        us_selection_free(&ref), us_selection_free(&replay);
        free(o1), free(o2);
        CUDA_OK(cudaGraphExecDestroy(exec));
        CUDA_OK(cudaGraphDestroy(graph));
        CUDA_OK(cudaStreamDestroy(stream));
        us_cuda_plan_free(&plan);
        release(&pr);
    }
}

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Times one selection of each baseline at N = 32768 (US_GPU_TIMING_N), 32 / 8 heads, d 128, on the
 * mixed synthetic input, and compares with the CPU selector's rows. */
Test(gpu_selectors, timing_32k, .timeout = 1200)
{
    require_gpu();
    const char *env = getenv("US_GPU_TIMING_N");
    const int n = env && atoi(env) > 0 ? atoi(env) : 32768;
    const us_method ms[] = {XA, FP};
    for (int mi = 0; mi < 2; mi++) {
        const scase c = {"timing", ms[mi], 32, 8, n, n, 128, C_, -1, 128, US_BF16, US_SYN_MIXED, 0, 0, 0, -1, 0, 0, 0, 0, 0};
        prepared pr = prepare(&c);
        us_error err;
        us_cuda_plan *plan = NULL;
        cr_assert_eq(us_cuda_plan_create(c.method, &pr.dev, &pr.p, &plan, &err), US_OK, "%s", err.msg);
        for (int w = 0; w < 2; w++) cr_assert_eq(us_cuda_select(plan, &pr.dev, NULL, &err), US_OK, "%s", err.msg);
        enum { RUNS = 10 };
        float ms_[RUNS];
        cudaEvent_t e0, e1;
        CUDA_OK(cudaEventCreate(&e0));
        CUDA_OK(cudaEventCreate(&e1));
        for (int r = 0; r < RUNS; r++) {
            CUDA_OK(cudaEventRecord(e0, NULL));
            cr_assert_eq(us_cuda_select(plan, &pr.dev, NULL, &err), US_OK, "%s", err.msg);
            CUDA_OK(cudaEventRecord(e1, NULL));
            CUDA_OK(cudaEventSynchronize(e1));
            CUDA_OK(cudaEventElapsedTime(&ms_[r], e0, e1));
        }
        qsort(ms_, RUNS, sizeof ms_[0], cmp_float);
        us_selection *gpu = NULL, *cpu = NULL;
        cr_assert_eq(us_cuda_plan_selection(plan, &gpu, &err), US_OK, "%s", err.msg);
        us_attn_args ha = pr.host;
        ha.o = ha.q;
        us_selection_finish(gpu, &ha);
        cr_assert_eq(us_select(c.method, &ha, &pr.p, &cpu, &err), US_OK, "%s", err.msg);
        const int64_t rows = (int64_t)cpu->n_heads * cpu->n_qblocks;
        int64_t same = 0, kc = 0, kg = 0;
        for (int64_t r = 0; r < rows; r++) same += rows_equal(cpu, gpu, r), kc += cpu->counts[r], kg += gpu->counts[r];
        char name[256];
        us_cuda_device_count(name, (int)sizeof name);
        fprintf(stderr,
                "us_cuda_select %s: N %d, 32/8 heads, d 128, bf16, causal, mixed: median %.3f ms, min %.3f ms on %s; "
                "density %.3f; CPU selector %.0f ms; rows identical %lld of %lld; kept CPU %lld GPU %lld\n",
                us_method_name(c.method), n, (double)ms_[RUNS / 2], (double)ms_[0], name, gpu->density, cpu->est_ms,
                (long long)same, (long long)rows, (long long)kc, (long long)kg);
        cr_expect_geq((double)same / (double)rows, 0.99, "%s: only %lld of %lld rows identical", us_method_name(c.method),
                      (long long)same, (long long)rows);
        us_selection_free(&gpu), us_selection_free(&cpu);
        CUDA_OK(cudaEventDestroy(e0));
        CUDA_OK(cudaEventDestroy(e1));
        us_cuda_plan_free(&plan);
        release(&pr);
    }
}

#else /* !US_HAVE_CUDA */

#define NO_CUDA_TEST(name)                                                                                         \
    Test(gpu_selectors, name) { cr_skip_test("built without CUDA (nvcc not found or US_ENABLE_CUDA=OFF)"); }
NO_CUDA_TEST(xattention_masks_dtypes_strides)
NO_CUDA_TEST(xattention_structured_layouts_floors)
NO_CUDA_TEST(flexprefill_patterns_masks_dtypes)
NO_CUDA_TEST(flexprefill_offsets_samples_floors)
NO_CUDA_TEST(graph_capture_replays_the_whole_call)
NO_CUDA_TEST(timing_32k)

#endif
