/* test_gpu_attention.c: the GPU block-sparse kernels (dense included) against the CPU kernel on the
 * same half-precision inputs and the same selection: fresh random and structured inputs, poisoned
 * outputs (every element must be written), every mask kind, query offsets, ragged lengths, GQA,
 * head dims 64/128/256, blocks 64/128, bf16 and f16. Every case runs twice, once on each kernel
 * (mma.sync, flash_sparse.cu, and the Hopper wgmma/TMA one, flash_wgmma.cu), forced through
 * us_cuda_plan_set_kernel. Skips, saying why, without a GPU. */
#include "reference.h"
#include "unisparse/synthetic.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef US_HAVE_CUDA
#include "gpu_check.h"
#include "unisparse_cuda.h"


typedef struct {
    int hq, hkv, nq, nk, d, block;
    us_dtype dtype;
    us_mask_kind mask;
    int64_t q_offset;
    us_method method; /* dense, or unisparse selected on the CPU and uploaded */
    float tau;
    bool structured;
} gpu_case;

static const us_span spans[] = {{10, 75}, {300, 420}, {900, 1000}};

static uint16_t to_half(float x, us_dtype t) { return t == US_BF16 ? us_f32_to_bf16(x) : us_f32_to_f16(x); }

static void run_kernel(gpu_case c, uint64_t seed, us_cuda_kernel kernel)
{
    int64_t nq_el = (int64_t)c.hq * c.nq * c.d, nk_el = (int64_t)c.hkv * c.nk * c.d;
    float *qf = malloc((size_t)nq_el * 4), *kf = malloc((size_t)nk_el * 4), *vf = malloc((size_t)nk_el * 4);
    if (c.structured && c.nq == c.nk) {
        us_error e;
        cr_assert_eq(us_synthetic_qkv(US_SYN_MIXED, c.nk, c.hq, c.hkv, c.d, seed, qf, kf, vf, NULL, NULL, &e), US_OK);
    } else {
        ref_fill_gaussian(qf, nq_el, seed, 1.0f);
        ref_fill_gaussian(kf, nk_el, seed + 1, 1.0f);
        ref_fill_gaussian(vf, nk_el, seed + 2, 1.0f);
    }
    uint16_t *qh = malloc((size_t)nq_el * 2), *kh = malloc((size_t)nk_el * 2), *vh = malloc((size_t)nk_el * 2);
    for (int64_t i = 0; i < nq_el; i++) qh[i] = to_half(qf[i], c.dtype);
    for (int64_t i = 0; i < nk_el; i++) kh[i] = to_half(kf[i], c.dtype), vh[i] = to_half(vf[i], c.dtype);
    /* CPU reference on the same half-precision values, f32 output */
    us_attn_args a = us_attn_args_default();
    a.q = us_tensor_3d(qh, c.dtype, c.hq, c.nq, c.d);
    a.k = us_tensor_3d(kh, c.dtype, c.hkv, c.nk, c.d);
    a.v = us_tensor_3d(vh, c.dtype, c.hkv, c.nk, c.d);
    float *o_ref = malloc((size_t)nq_el * 4), *lse_ref = malloc((size_t)c.hq * c.nq * 4);
    a.o = us_tensor_3d(o_ref, US_F32, c.hq, c.nq, c.d);
    a.lse = lse_ref;
    a.q_offset = c.q_offset;
    a.mask.kind = c.mask;
    if (c.mask == US_MASK_CAUSAL_SPANS) a.mask.spans = spans, a.mask.n_spans = 3;
    us_unisparse_params p = us_unisparse_params_default();
    p.block = c.block;
    p.gpu_min_gflop = 0; /* the estimator itself, also on small inputs */
    p.tau = c.tau;
    us_error err;
    us_selection *sel = NULL;
    cr_assert_eq(us_select(c.method, &a, &p, &sel, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_attention_sparse(&a, sel, &err), US_OK, "%s", err.msg);

    /* GPU */
    void *dq, *dk, *dv, *dout, *dlse;
    size_t ob = (size_t)nq_el * 2, lb = (size_t)c.hq * c.nq * 4;
    cr_assert_eq(us_cuda_alloc(&dq, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dk, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dv, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dout, ob, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dlse, lb, &err), US_OK, "%s", err.msg);
    us_cuda_upload(dq, qh, (size_t)nq_el * 2, &err);
    us_cuda_upload(dk, kh, (size_t)nk_el * 2, &err);
    us_cuda_upload(dv, vh, (size_t)nk_el * 2, &err);
    uint16_t *poison = malloc(ob);
    float *lse_poison = malloc(lb);
    for (int64_t i = 0; i < nq_el; i++) poison[i] = 0x7fc1; /* a NaN in both formats */
    for (int64_t i = 0; i < c.hq * c.nq; i++) lse_poison[i] = NAN;
    us_cuda_upload(dout, poison, ob, &err);
    us_cuda_upload(dlse, lse_poison, lb, &err);
    us_attn_args g = a;
    g.q = us_tensor_3d(dq, c.dtype, c.hq, c.nq, c.d);
    g.k = us_tensor_3d(dk, c.dtype, c.hkv, c.nk, c.d);
    g.v = us_tensor_3d(dv, c.dtype, c.hkv, c.nk, c.d);
    g.o = us_tensor_3d(dout, c.dtype, c.hq, c.nq, c.d);
    g.lse = dlse;
    us_cuda_plan *plan = NULL;
    cr_assert_eq(us_cuda_plan_create(US_METHOD_DENSE, &g, &p, &plan, &err), US_OK, "%s", err.msg);
    us_cuda_plan_set_kernel(plan, kernel);
    if (c.method == US_METHOD_DENSE) {
        cr_assert_eq(us_cuda_attention(plan, &g, NULL, &err), US_OK, "%s", err.msg);
    } else {
        cr_assert_eq(us_cuda_plan_set_selection(plan, sel, &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_cuda_attention_selected(plan, &g, NULL, &err), US_OK, "%s", err.msg);
    }
    cr_assert_eq(us_cuda_sync(&err), US_OK, "%s", err.msg);
    uint16_t *out = malloc(ob);
    float *lse = malloc(lb);
    us_cuda_download(out, dout, ob, &err);
    us_cuda_download(lse, dlse, lb, &err);
    double num = 0, den = 0, lse_worst = 0;
    int64_t unwritten = 0;
    for (int64_t i = 0; i < nq_el; i++) {
        float x = c.dtype == US_BF16 ? us_bf16_to_f32(out[i]) : us_f16_to_f32(out[i]);
        if (isnan(x)) unwritten++;
        num += (double)(x - o_ref[i]) * (x - o_ref[i]);
        den += (double)o_ref[i] * o_ref[i];
    }
    for (int64_t i = 0; i < c.hq * c.nq; i++) {
        if (isnan(lse[i])) unwritten++;
        if (isinf(lse_ref[i]) && lse[i] == lse_ref[i]) continue;
        lse_worst = fmax(lse_worst, fabs((double)lse[i] - lse_ref[i]));
    }
    double rel = sqrt(num / den);
    /* bf16 output rounding alone is ~2^-9 relative; f16 ~2^-12; the GPU rounds P to the input
     * type before P.V, as FlashAttention does */
    double tol = c.dtype == US_BF16 ? 1.2e-2 : 2e-3;
    cr_expect_eq(unwritten, 0, "%lld outputs not written", (long long)unwritten);
    cr_expect_lt(rel, tol, "%s kernel, %s %s hq=%d hkv=%d nq=%d nk=%d d=%d S=%d off=%lld mask=%s: rel_err %.3g",
                 kernel == US_CUDA_KERNEL_WGMMA ? "wgmma" : "mma", us_method_name(c.method), us_dtype_name(c.dtype),
                 c.hq, c.hkv, c.nq, c.nk, c.d, c.block, (long long)c.q_offset, us_mask_kind_name(c.mask), rel);
    cr_expect_lt(lse_worst, 2e-2, "%s kernel: lse max abs err %.3g", kernel == US_CUDA_KERNEL_WGMMA ? "wgmma" : "mma",
                 lse_worst);
    us_cuda_plan_free(&plan);
    us_cuda_free(dq), us_cuda_free(dk), us_cuda_free(dv), us_cuda_free(dout), us_cuda_free(dlse);
    us_selection_free(&sel);
    free(qf), free(kf), free(vf), free(qh), free(kh), free(vh), free(o_ref), free(lse_ref), free(poison),
        free(lse_poison), free(out), free(lse);
}

/* Each case on both kernels. */
static void run(gpu_case c, uint64_t seed)
{
    run_kernel(c, seed, US_CUDA_KERNEL_MMA);
    run_kernel(c, seed, US_CUDA_KERNEL_WGMMA);
}

Test(gpu_attention, dense_every_dim_dtype_block)
{
    require_gpu();
    int dims[] = {64, 128, 256};
    for (int di = 0; di < 3; di++)
        for (int b = 64; b <= 128; b += 64) {
            run((gpu_case){4, 2, 777, 777, dims[di], b, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 1 + di);
            run((gpu_case){4, 1, 515, 515, dims[di], b, US_F16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 7 + di);
        }
}

Test(gpu_attention, dense_masks_offsets_ragged)
{
    require_gpu();
    run((gpu_case){2, 2, 1100, 1100, 128, 128, US_BF16, US_MASK_BIDIRECTIONAL, -1, US_METHOD_DENSE, 1, false}, 3);
    run((gpu_case){2, 1, 1100, 1100, 128, 128, US_BF16, US_MASK_CAUSAL_SPANS, -1, US_METHOD_DENSE, 1, false}, 4);
    run((gpu_case){4, 2, 200, 1100, 128, 128, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 5);
    run((gpu_case){4, 2, 200, 1100, 64, 64, US_F16, US_MASK_CAUSAL_SPANS, 333, US_METHOD_DENSE, 1, false}, 6);
    run((gpu_case){8, 2, 1, 1, 128, 128, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 8);
    run((gpu_case){8, 2, 1, 4000, 128, 128, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 9);
}

Test(gpu_attention, sparse_selection_matches_cpu)
{
    require_gpu();
    run((gpu_case){8, 2, 3000, 3000, 128, 128, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_UNISPARSE, 0.9f, true}, 11);
    run((gpu_case){4, 1, 3000, 3000, 256, 128, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_UNISPARSE, 0.9f, true}, 12);
    run((gpu_case){4, 4, 2000, 2000, 64, 64, US_F16, US_MASK_CAUSAL_SPANS, -1, US_METHOD_UNISPARSE, 0.5f, false}, 13);
    run((gpu_case){4, 2, 700, 2000, 128, 64, US_BF16, US_MASK_CAUSAL, 900, US_METHOD_UNISPARSE, 0.5f, false}, 14);
    run((gpu_case){4, 2, 1500, 1500, 128, 128, US_BF16, US_MASK_BIDIRECTIONAL, -1, US_METHOD_XATTENTION, 0.9f, false}, 15);
    run((gpu_case){8, 2, 2000, 2000, 256, 64, US_F16, US_MASK_CAUSAL, -1, US_METHOD_FLEXPREFILL, 0.9f, true}, 16);
    run((gpu_case){4, 4, 1300, 1300, 64, 128, US_BF16, US_MASK_CAUSAL_SPANS, -1, US_METHOD_UNISPARSE, 0.7f, false}, 17);
}

/* A selection row longer than the kernels keep in shared memory (read from global instead): 200
 * queries at the end of 70000 keys, block 64, every block kept (1094 per row). */
Test(gpu_attention, long_rows_read_from_global)
{
    require_gpu();
    run((gpu_case){2, 1, 200, 70000, 64, 64, US_BF16, US_MASK_CAUSAL, -1, US_METHOD_DENSE, 1, false}, 21);
    run((gpu_case){2, 1, 130, 70000, 128, 64, US_F16, US_MASK_CAUSAL, -1, US_METHOD_UNISPARSE, 0.99f, false}, 22);
}

/* The two kernels on dense causal attention, bf16, N = 16384 (US_GPU_TIMING_N): effective TFLOP/s
 * (4 d per visible pair) for the shapes of the benchmark; also shows which one AUTO picks. */
Test(gpu_attention, timing_kernels, .timeout = 600)
{
    require_gpu();
    const char *env = getenv("US_GPU_TIMING_N");
    const int n = env && atoi(env) > 0 ? atoi(env) : 16384;
    const int shapes[3][3] = {{32, 8, 128}, {8, 4, 256}, {4, 1, 256}};
    char name[256];
    us_cuda_device_count(name, (int)sizeof name);
    for (int si = 0; si < 3; si++) {
        const int hq = shapes[si][0], hkv = shapes[si][1], d = shapes[si][2];
        const int64_t nq_el = (int64_t)hq * n * d, nk_el = (int64_t)hkv * n * d;
        uint16_t *h = malloc((size_t)nq_el * 2);
        cr_assert_not_null(h);
        {
            float *f = malloc((size_t)nq_el * 4);
            cr_assert_not_null(f);
            ref_fill_gaussian(f, nq_el, 3 + (uint64_t)si, 1.0f);
            for (int64_t i = 0; i < nq_el; i++) h[i] = us_f32_to_bf16(f[i]);
            free(f);
        }
        us_error err;
        void *dq, *dk, *dv, *dout;
        cr_assert_eq(us_cuda_alloc(&dq, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_cuda_alloc(&dk, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_cuda_alloc(&dv, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_cuda_alloc(&dout, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
        us_cuda_upload(dq, h, (size_t)nq_el * 2, &err);
        us_cuda_upload(dk, h, (size_t)nk_el * 2, &err); /* random data, not zeros: a prefix of q's */
        us_cuda_upload(dv, h + nk_el / 2, (size_t)nk_el * 2, &err);
        us_attn_args a = us_attn_args_default();
        a.q = us_tensor_3d(dq, US_BF16, hq, n, d);
        a.k = us_tensor_3d(dk, US_BF16, hkv, n, d);
        a.v = us_tensor_3d(dv, US_BF16, hkv, n, d);
        a.o = us_tensor_3d(dout, US_BF16, hq, n, d);
        us_unisparse_params p = us_unisparse_params_default();
        us_cuda_plan *plan = NULL;
        cr_assert_eq(us_cuda_plan_create(US_METHOD_DENSE, &a, &p, &plan, &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_cuda_select(plan, &a, NULL, &err), US_OK, "%s", err.msg);
        const double flops = 4.0 * d * hq * (double)n * (n + 1) / 2;
        double best[2];
        const char *auto_name = us_cuda_plan_kernel_name(plan, &a);
        for (int ki = 0; ki < 2; ki++) {
            us_cuda_plan_set_kernel(plan, ki == 0 ? US_CUDA_KERNEL_MMA : US_CUDA_KERNEL_WGMMA);
            for (int w = 0; w < 2; w++) cr_assert_eq(us_cuda_attention_selected(plan, &a, NULL, &err), US_OK, "%s", err.msg);
            double t[7];
            for (int r = 0; r < 7; r++) {
                void *timer = NULL;
                us_cuda_timer(&timer);
                cr_assert_eq(us_cuda_attention_selected(plan, &a, NULL, &err), US_OK, "%s", err.msg);
                t[r] = us_cuda_timer(&timer);
            }
            for (int x = 1; x < 7; x++) /* median of 7 */
                for (int y = x; y > 0 && t[y] < t[y - 1]; y--) {
                    double tmp = t[y];
                    t[y] = t[y - 1], t[y - 1] = tmp;
                }
            best[ki] = t[3];
        }
        fprintf(stderr, "dense causal bf16 N %d, %d/%d/%d on %s: mma %.3f ms (%.0f TFLOP/s), wgmma %.3f ms (%.0f TFLOP/s); AUTO: %s\n",
                n, hq, hkv, d, name, best[0], flops / best[0] / 1e9, best[1], flops / best[1] / 1e9, auto_name);
        cr_assert_eq(us_cuda_sync(&err), US_OK, "%s", err.msg);
        us_cuda_plan_free(&plan);
        us_cuda_free(dq), us_cuda_free(dk), us_cuda_free(dv), us_cuda_free(dout);
        free(h);
    }
}

/* The whole UniSparse call (estimation, selection, attention) captured in a CUDA graph replays to
 * the same output as a direct call: nothing in it synchronises with the host. */
Test(gpu_attention, whole_call_captured_in_a_graph)
{
    require_gpu();
    const int hq = 8, hkv = 2, n = 3000, d = 128;
    int64_t nq_el = (int64_t)hq * n * d, nk_el = (int64_t)hkv * n * d;
    float *qf = malloc((size_t)nq_el * 4), *kf = malloc((size_t)nk_el * 4), *vf = malloc((size_t)nk_el * 4);
    us_error err;
    cr_assert_eq(us_synthetic_qkv(US_SYN_MIXED, n, hq, hkv, d, 5, qf, kf, vf, NULL, NULL, &err), US_OK);
    uint16_t *qh = malloc((size_t)nq_el * 2), *kh = malloc((size_t)nk_el * 2), *vh = malloc((size_t)nk_el * 2);
    for (int64_t i = 0; i < nq_el; i++) qh[i] = us_f32_to_bf16(qf[i]);
    for (int64_t i = 0; i < nk_el; i++) kh[i] = us_f32_to_bf16(kf[i]), vh[i] = us_f32_to_bf16(vf[i]);
    void *dq, *dk, *dv, *do1, *do2;
    cr_assert_eq(us_cuda_alloc(&dq, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dk, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&dv, (size_t)nk_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&do1, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_alloc(&do2, (size_t)nq_el * 2, &err), US_OK, "%s", err.msg);
    us_cuda_upload(dq, qh, (size_t)nq_el * 2, &err);
    us_cuda_upload(dk, kh, (size_t)nk_el * 2, &err);
    us_cuda_upload(dv, vh, (size_t)nk_el * 2, &err);
    us_attn_args a = us_attn_args_default();
    a.q = us_tensor_3d(dq, US_BF16, hq, n, d);
    a.k = us_tensor_3d(dk, US_BF16, hkv, n, d);
    a.v = us_tensor_3d(dv, US_BF16, hkv, n, d);
    a.o = us_tensor_3d(do1, US_BF16, hq, n, d);
    us_unisparse_params p = us_unisparse_params_default();
    p.gpu_min_gflop = 0; /* capture the estimation, not the fallback */
    us_cuda_plan *plan = NULL;
    cr_assert_eq(us_cuda_plan_create(US_METHOD_UNISPARSE, &a, &p, &plan, &err), US_OK, "%s", err.msg);
    fprintf(stderr, "graph capture: UniSparse + %s kernel\n", us_cuda_plan_kernel_name(plan, &a));
    /* a direct call first: it allocates the estimator's scratch, which a capture may not do */
    cr_assert_eq(us_cuda_attention(plan, &a, NULL, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_cuda_sync(&err), US_OK, "%s", err.msg);
    a.o = us_tensor_3d(do2, US_BF16, hq, n, d);
    cudaStream_t stream;
    cr_assert_eq(cudaStreamCreate(&stream), cudaSuccess);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cr_assert_eq(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    us_status st = us_cuda_attention(plan, &a, stream, &err);
    cr_assert_eq(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    cr_assert_eq(st, US_OK, "%s", err.msg);
    cr_assert_eq(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    cr_assert_eq(cudaGraphLaunch(exec, stream), cudaSuccess);
    cr_assert_eq(cudaStreamSynchronize(stream), cudaSuccess);
    uint16_t *o1 = malloc((size_t)nq_el * 2), *o2 = malloc((size_t)nq_el * 2);
    us_cuda_download(o1, do1, (size_t)nq_el * 2, &err);
    us_cuda_download(o2, do2, (size_t)nq_el * 2, &err);
    cr_expect_eq(memcmp(o1, o2, (size_t)nq_el * 2), 0, "graph replay differs from the direct call");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    us_cuda_plan_free(&plan);
    us_cuda_free(dq), us_cuda_free(dk), us_cuda_free(dv), us_cuda_free(do1), us_cuda_free(do2);
    free(qf), free(kf), free(vf), free(qh), free(kh), free(vh), free(o1), free(o2);
}

Test(gpu_attention, bad_arguments_rejected)
{
    require_gpu();
    us_attn_args a = us_attn_args_default();
    static uint16_t dummy[4 * 64 * 96];
    a.q = us_tensor_3d(dummy, US_BF16, 1, 64, 96); /* head dim 96 is not compiled for the GPU */
    a.k = a.v = a.o = a.q;
    us_unisparse_params p = us_unisparse_params_default();
    us_cuda_plan *plan = NULL;
    us_error err;
    cr_expect_eq(us_cuda_plan_create(US_METHOD_DENSE, &a, &p, &plan, &err), US_ERR_UNSUPPORTED);
    cr_expect_not_null(strstr(err.msg, "head dim"), "%s", err.msg);
    a.q = us_tensor_3d(dummy, US_F32, 1, 32, 64);
    a.k = a.v = a.o = a.q;
    cr_expect_eq(us_cuda_plan_create(US_METHOD_DENSE, &a, &p, &plan, &err), US_ERR_UNSUPPORTED);
    cr_expect_not_null(strstr(err.msg, "f16"), "%s", err.msg);
    cr_expect_null(plan);
}

#else
Test(gpu_attention, skipped_without_cuda) { cr_skip_test("built without CUDA: GPU attention not tested"); }
#endif
