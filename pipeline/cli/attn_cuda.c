/* attn_cuda.c: `unisparse attn --device cuda`. Selection and attention are timed apart with device
 * events, warm, median of --repeat runs. Dense, UniSparse, XAttention and FlexPrefill estimate and
 * select on the device; the other methods select on the CPU (their time is reported as est_ms with
 * est_device "cpu") and the GPU kernel runs over the uploaded selection. */
#include "attn_cuda.h"

#include <stdio.h>

#ifndef US_HAVE_CUDA
int attn_run_cuda(const us_attn_args *a, const us_method *methods, int n_methods, const us_unisparse_params *p,
                  int repeat, bool json, const char *source, const char *save_selection, int kernel_choice)
{
    (void)a, (void)methods, (void)n_methods, (void)p, (void)repeat, (void)json, (void)source, (void)save_selection;
    (void)kernel_choice;
    fprintf(stderr, "unisparse attn: --device cuda: this build has no CUDA support\n");
    return 2;
}
#else
#include "cuda_device.h"
#include "selection_file.h"
#include "stats.h"
#include "unisparse_cuda.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *q, *k, *v, *o, *lse;
} device_buffers;

static void release(device_buffers *b)
{
    us_cuda_free(b->q), us_cuda_free(b->k), us_cuda_free(b->v), us_cuda_free(b->o), us_cuda_free(b->lse);
    memset(b, 0, sizeof *b);
}

/* Host copy of t in dtype dt, contiguous. */
static uint16_t *to_half(const us_tensor *t, us_dtype dt)
{
    int64_t n = t->shape[0] * t->shape[1] * t->shape[2];
    uint16_t *h = malloc((size_t)n * 2);
    if (!h) return NULL;
    int64_t x = 0;
    for (int64_t i = 0; i < t->shape[0]; i++)
        for (int64_t j = 0; j < t->shape[1]; j++)
            for (int64_t c = 0; c < t->shape[2]; c++) {
                float f = us_tensor_get(t, i, j, c);
                h[x++] = dt == US_BF16 ? us_f32_to_bf16(f) : us_f32_to_f16(f);
            }
    return h;
}

int attn_run_cuda(const us_attn_args *host, const us_method *methods, int n_methods, const us_unisparse_params *p,
                  int repeat, bool json, const char *source, const char *save_selection, int kernel_choice)
{
    char gpu[256];
    if (us_cuda_device_count(gpu, sizeof gpu) == 0) {
        fprintf(stderr, "unisparse attn: --device cuda: %s\n", gpu);
        return 1;
    }
    us_dtype dt = host->q.dtype == US_F16 ? US_F16 : US_BF16;
    int64_t hq = host->q.shape[0], nq = host->q.shape[1], d = host->q.shape[2], hkv = host->k.shape[0],
            nk = host->k.shape[1];
    size_t qb = (size_t)(hq * nq * d) * 2, kb = (size_t)(hkv * nk * d) * 2, lb = (size_t)(hq * nq) * 4;
    device_buffers b = {0};
    us_error err;
    int status = 1;
    uint16_t *hq_h = to_half(&host->q, dt), *hk_h = to_half(&host->k, dt), *hv_h = to_half(&host->v, dt);
    uint16_t *o_ref = malloc(qb), *o = malloc(qb);
    float *lse_ref = malloc(lb), *lse = malloc(lb);
    double *t_est = calloc((size_t)repeat, sizeof(double)), *t_att = calloc((size_t)repeat, sizeof(double));
    if (!hq_h || !hk_h || !hv_h || !o_ref || !o || !lse_ref || !lse || !t_est || !t_att) {
        fprintf(stderr, "unisparse attn: no host memory\n");
        goto done;
    }
    if (us_cuda_alloc(&b.q, qb, &err) || us_cuda_alloc(&b.k, kb, &err) || us_cuda_alloc(&b.v, kb, &err) ||
        us_cuda_alloc(&b.o, qb, &err) || us_cuda_alloc(&b.lse, lb, &err) || us_cuda_upload(b.q, hq_h, qb, &err) ||
        us_cuda_upload(b.k, hk_h, kb, &err) || us_cuda_upload(b.v, hv_h, kb, &err)) {
        fprintf(stderr, "unisparse attn: %s\n", err.msg);
        goto done;
    }
    us_attn_args a = *host;
    a.q = us_tensor_3d(b.q, dt, hq, nq, d);
    a.k = us_tensor_3d(b.k, dt, hkv, nk, d);
    a.v = us_tensor_3d(b.v, dt, hkv, nk, d);
    a.o = us_tensor_3d(b.o, dt, hq, nq, d);
    a.lse = b.lse;
    if (!json)
        printf("%s\n%-12s %9s %10s %10s %10s %9s %10s %12s\n", gpu, "method", "density", "est_ms", "attn_ms",
               "total_ms", "speedup", "rel_err", "mass_recall");
    double dense_total = 0;
    bool have_ref = false;
    for (int mi = -1; mi < n_methods; mi++) {
        us_method m = mi < 0 ? US_METHOD_DENSE : methods[mi];
        bool on_device = m == US_METHOD_DENSE || m == US_METHOD_UNISPARSE || m == US_METHOD_XATTENTION ||
                         m == US_METHOD_FLEXPREFILL;
        us_cuda_plan *plan = NULL;
        us_selection *sel = NULL;
        if (us_cuda_plan_create(on_device ? m : US_METHOD_DENSE, &a, p, &plan, &err)) {
            fprintf(stderr, "unisparse attn: %s: %s\n", us_method_name(m), err.msg);
            goto done;
        }
        us_cuda_plan_set_kernel(plan, (us_cuda_kernel)kernel_choice);
        /* the host view of the same half-precision values; o only lends its shape to selectors */
        us_attn_args ha = *host;
        ha.q = us_tensor_3d(hq_h, dt, hq, nq, d);
        ha.k = us_tensor_3d(hk_h, dt, hkv, nk, d);
        ha.v = us_tensor_3d(hv_h, dt, hkv, nk, d);
        ha.o = ha.q;
        ha.lse = NULL;
        if (!on_device) { /* select on the CPU */
            if (us_select(m, &ha, p, &sel, &err) || us_cuda_plan_set_selection(plan, sel, &err)) {
                fprintf(stderr, "unisparse attn: %s: %s\n", us_method_name(m), err.msg);
                us_cuda_plan_free(&plan);
                us_selection_free(&sel);
                goto done;
            }
        }
        for (int it = -1; it < repeat; it++) { /* it = -1 warms up */
            void *timer = NULL;
            double est = 0;
            if (on_device) {
                us_cuda_timer(&timer);
                if (us_cuda_select(plan, &a, NULL, &err)) break;
                est = us_cuda_timer(&timer);
            } else {
                est = sel->est_ms;
            }
            us_cuda_timer(&timer);
            if (us_cuda_attention_selected(plan, &a, NULL, &err)) break;
            double att = us_cuda_timer(&timer);
            if (it >= 0) t_est[it] = est, t_att[it] = att;
        }
        if (us_cuda_sync(&err)) {
            fprintf(stderr, "unisparse attn: %s: %s\n", us_method_name(m), err.msg);
            us_cuda_plan_free(&plan);
            goto done;
        }
        us_selection *got = NULL;
        if (!sel && us_cuda_plan_selection(plan, &got, &err) == US_OK) sel = got;
        if (!sel) {
            fprintf(stderr, "unisparse attn: %s: %s\n", us_method_name(m), err.msg);
            us_cuda_plan_free(&plan);
            goto done;
        }
        us_selection_finish(sel, &ha);
        double density = sel->density;
        const char *kernel = us_cuda_plan_kernel_name(plan, &a);
        const bool fell_back = on_device && m != US_METHOD_DENSE && us_cuda_plan_falls_back(plan);
        if (save_selection && m == US_METHOD_UNISPARSE && us_selection_save(save_selection, sel, &err)) {
            fprintf(stderr, "unisparse attn: %s\n", err.msg);
            us_selection_free(&sel);
            us_cuda_plan_free(&plan);
            goto done;
        }
        us_cuda_download(mi < 0 ? o_ref : o, b.o, qb, &err);
        us_cuda_download(mi < 0 ? lse_ref : lse, b.lse, lb, &err);
        us_selection_free(&sel);
        us_cuda_plan_free(&plan);
        if (mi < 0) {
            have_ref = true;
            dense_total = us_median(t_att, repeat);
            continue; /* the reference run; a listed "dense" is timed again below */
        }
        double num = 0, den = 0, rec = 0;
        int64_t rows = 0;
        for (size_t i = 0; i < qb / 2; i++) {
            float x = dt == US_BF16 ? us_bf16_to_f32(o[i]) : us_f16_to_f32(o[i]);
            float y = dt == US_BF16 ? us_bf16_to_f32(o_ref[i]) : us_f16_to_f32(o_ref[i]);
            num += (double)(x - y) * (x - y);
            den += (double)y * y;
        }
        for (size_t i = 0; i < lb / 4; i++)
            if (isfinite(lse_ref[i])) rec += isfinite(lse[i]) ? fmin(1.0, exp((double)lse[i] - lse_ref[i])) : 0, rows++;
        double est = us_median(t_est, repeat), att = us_median(t_att, repeat), rel = den > 0 ? sqrt(num / den) : 0;
        double recall = rows ? rec / (double)rows : 1.0;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "method", us_method_name(m));
            cJSON_AddStringToObject(j, "device", "cuda");
            cJSON_AddStringToObject(j, "gpu", gpu);
            cJSON_AddStringToObject(j, "input", source);
            cJSON_AddStringToObject(j, "mask", us_mask_kind_name(host->mask.kind));
            cJSON_AddStringToObject(j, "dtype", us_dtype_name(dt));
            cJSON_AddNumberToObject(j, "n", (double)nk);
            cJSON_AddNumberToObject(j, "nq", (double)nq);
            cJSON_AddNumberToObject(j, "heads", (double)hq);
            cJSON_AddNumberToObject(j, "kv_heads", (double)hkv);
            cJSON_AddNumberToObject(j, "head_dim", (double)d);
            cJSON_AddNumberToObject(j, "density", density);
            cJSON_AddNumberToObject(j, "est_ms", est);
            cJSON_AddStringToObject(j, "est_device", on_device ? "cuda" : "cpu");
            cJSON_AddStringToObject(j, "kernel", kernel);
            cJSON_AddBoolToObject(j, "dense_fallback", fell_back);
            cJSON_AddNumberToObject(j, "attn_ms", att);
            cJSON_AddNumberToObject(j, "total_ms", est + att);
            cJSON_AddNumberToObject(j, "dense_ms", dense_total);
            cJSON_AddNumberToObject(j, "rel_err", rel);
            cJSON_AddNumberToObject(j, "mass_recall", recall);
            char *s = cJSON_PrintUnformatted(j);
            if (s) puts(s);
            free(s);
            cJSON_Delete(j);
        } else {
            printf("%-12s %9.4f %10.3f%s %10.3f %10.3f %8.2fx %10.2e %12.6f%s\n", us_method_name(m), density, est,
                   on_device ? " " : "*", att, est + att, dense_total / (est + att), rel, recall,
                   fell_back ? "  (dense fallback: below --gpu-min-gflop)" : "");
        }
        fflush(stdout);
    }
    if (!json && have_ref) printf("(* selection on the CPU, not comparable in time)\n");
    status = 0;
done:
    release(&b);
    free(hq_h), free(hk_h), free(hv_h), free(o_ref), free(o), free(lse_ref), free(lse), free(t_est), free(t_att);
    return status;
}
#endif
