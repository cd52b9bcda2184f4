/* bench_attention_cpu.c: the CPU attention benchmark behind bench/RESULTS.md.
 *
 *   build/bin/bench_attention_cpu [--n 16384] [--heads 8] [--kv-heads 2] [--head-dim 128]
 *                                 [--repeat 5] [--kind mixed] [--methods LIST]
 *
 * In one run: OpenBLAS sgemm GFLOP/s on a large square product (the machine's ceiling as the
 * BLAS sees it), our dense attention (GFLOP/s counted over the visible causal pairs), then every
 * sparse method (estimation and attention timed apart, density, rel_err and mass recall against
 * the dense output of this run). Medians of --repeat warm runs. Prints a Markdown table. */
#include "blas_env.h"
#include "stats.h"
#include "unisparse/attention.h"
#include "unisparse/synthetic.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double sgemm_gflops(int repeat)
{
    int n = 2048;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm */
    double *t = malloc((size_t)repeat * sizeof *t);
    for (int r = 0; r < repeat; r++) {
        double t0 = us_wall_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t[r] = us_wall_ms() - t0;
    }
    double g = 2.0 * n * n * (double)n / (us_median(t, repeat) * 1e6);
    free(a), free(b), free(c), free(t);
    return g;
}

int main(int argc, char **argv)
{
    us_blas_env_fix(argv);
    int64_t n = 16384;
    int hq = 8, hkv = 2, d = 128, repeat = 5;
    const char *kind = "mixed", *methods = "unisparse,xattention,flexprefill,minference,ashape";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--heads")) hq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv-heads")) hkv = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--head-dim")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kind")) kind = argv[i + 1];
        else if (!strcmp(argv[i], "--methods")) methods = argv[i + 1];
        else {
            fprintf(stderr, "bench_attention_cpu: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int k = us_synthetic_kind_parse(kind);
    if (k < 0 || n < 1 || repeat < 1) {
        fprintf(stderr, "bench_attention_cpu: bad --kind, --n or --repeat\n");
        return 2;
    }
    size_t nq = (size_t)hq * n * d, nkv = (size_t)hkv * n * d;
    float *q = malloc(nq * 4), *kk = malloc(nkv * 4), *v = malloc(nkv * 4);
    float *o_ref = malloc(nq * 4), *o = malloc(nq * 4), *lse_ref = malloc((size_t)hq * n * 4), *lse = malloc((size_t)hq * n * 4);
    us_error err;
    if (!q || !kk || !v || !o_ref || !o || !lse_ref || !lse ||
        us_synthetic_qkv((us_synthetic_kind)k, n, hq, hkv, d, 1, q, kk, v, NULL, NULL, &err)) {
        fprintf(stderr, "bench_attention_cpu: setup failed\n");
        return 1;
    }
    us_attn_args a = us_attn_args_default();
    a.q = us_tensor_3d(q, US_F32, hq, n, d);
    a.k = us_tensor_3d(kk, US_F32, hkv, n, d);
    a.v = us_tensor_3d(v, US_F32, hkv, n, d);
    a.o = us_tensor_3d(o_ref, US_F32, hq, n, d);
    a.lse = lse_ref;

    /* the BLAS ceiling, measured before and after the attention runs; the better median counts */
    double sg = sgemm_gflops(repeat < 10 ? 10 : repeat);
    /* causal FLOPs: 2 products of 2 * d flops per visible (query, key) pair */
    double flops = 4.0 * d * hq * ((double)n * (n + 1) / 2);
    us_attention_dense(&a, &err); /* warm */
    double *t = malloc((size_t)repeat * sizeof *t), *te = malloc((size_t)repeat * sizeof *te);
    for (int r = 0; r < repeat; r++) {
        double t0 = us_wall_ms();
        if (us_attention_dense(&a, &err)) {
            fprintf(stderr, "bench_attention_cpu: %s\n", err.msg);
            return 1;
        }
        t[r] = us_wall_ms() - t0;
    }
    double dense_ms = us_median(t, repeat), dense_gf = flops / (dense_ms * 1e6);
    double sg_after = sgemm_gflops(repeat < 10 ? 10 : repeat);
    sg = sg_after > sg ? sg_after : sg;
    printf("CPU: %d threads, OpenBLAS core %s; N=%lld Hq=%d Hkv=%d d=%d causal f32, input synthetic:%s, "
           "median of %d\n\n",
           omp_get_max_threads(), us_blas_core_name(), (long long)n, hq, hkv, d, kind, repeat);
    printf("| what | ms | GFLOP/s | vs sgemm | density | est_ms | attn_ms | speedup vs dense | rel_err | "
           "mass_recall |\n|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| OpenBLAS sgemm 2048^3 | | %.1f | 1.00 | | | | | | |\n", sg);
    printf("| dense (ours) | %.1f | %.1f | %.2f | 1.000 | 0 | %.1f | 1.00x | 0 | 1 |\n", dense_ms, dense_gf,
           dense_gf / sg, dense_ms);
    fflush(stdout);
    a.o = us_tensor_3d(o, US_F32, hq, n, d);
    a.lse = lse;
    us_unisparse_params p = us_unisparse_params_default();
    char list[256];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int m = us_method_parse(tok);
        if (m < 0) continue;
        double density = 0;
        for (int r = 0; r < repeat; r++) {
            us_selection *sel = NULL;
            if (us_select((us_method)m, &a, &p, &sel, &err)) {
                fprintf(stderr, "bench_attention_cpu: %s: %s\n", tok, err.msg);
                return 1;
            }
            double t0 = us_wall_ms();
            us_attention_sparse(&a, sel, &err);
            t[r] = us_wall_ms() - t0;
            te[r] = sel->est_ms;
            density = sel->density;
            us_selection_free(&sel);
        }
        double num = 0, den = 0, rec = 0;
        for (size_t i = 0; i < nq; i++) {
            num += (double)(o[i] - o_ref[i]) * (o[i] - o_ref[i]);
            den += (double)o_ref[i] * o_ref[i];
        }
        for (int64_t i = 0; i < (int64_t)hq * n; i++) rec += fmin(1.0, exp((double)lse[i] - lse_ref[i]));
        double em = us_median(te, repeat), am = us_median(t, repeat);
        printf("| %s | %.1f | %.1f eff. | | %.3f | %.1f (%.1f%% of dense) | %.1f | %.2fx | %.2e | %.4f |\n", tok,
               em + am, flops / ((em + am) * 1e6), density, em, 100.0 * em / dense_ms, am, dense_ms / (em + am),
               sqrt(num / den), rec / (double)(hq * n));
        fflush(stdout);
    }
    free(q), free(kk), free(v), free(o_ref), free(o), free(lse_ref), free(lse), free(t), free(te);
    return 0;
}
