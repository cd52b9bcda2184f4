/* cmd_attn.c: `unisparse attn`: runs attention methods on one input and reports speed, density
 * and fidelity against dense attention computed in the same run. */
#include "attn_cuda.h"
#include "commands.h"
#include "options.h"
#include "progress.h"
#include "qkv_file.h"
#include "stats.h"
#include "unisparse/synthetic.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    us_method method;
    double density, pair_density, est_ms, attn_ms, rel_err, mass_recall;
} attn_result;

/* Runs method m `repeat` times; the last run's output stays in a->o and lse. */
static us_status run_method(us_method m, us_attn_args *a, const us_unisparse_params *p, int repeat,
                            attn_result *r, us_error *err)
{
    double *est = calloc((size_t)repeat, sizeof *est), *att = calloc((size_t)repeat, sizeof *att);
    us_status s = est && att ? US_OK : us_error_set(err, US_ERR_NOMEM, "no memory");
    for (int it = 0; it < repeat && !s; it++) {
        us_selection *sel = NULL;
        s = us_select(m, a, p, &sel, err);
        if (s) break;
        double t0 = us_wall_ms();
        s = us_attention_sparse(a, sel, err);
        att[it] = us_wall_ms() - t0;
        est[it] = m == US_METHOD_DENSE ? 0.0 : sel->est_ms;
        r->density = sel->density;
        r->pair_density = sel->pair_density;
        us_selection_free(&sel);
    }
    if (!s) {
        r->method = m;
        r->est_ms = us_median(est, repeat);
        r->attn_ms = us_median(att, repeat);
    }
    free(est), free(att);
    return s;
}

static void fidelity(const float *o, const float *lse, const float *o_ref, const float *lse_ref, int64_t n_out,
                     int64_t n_rows, attn_result *r)
{
    double num = 0, den = 0, recall = 0;
    int64_t rows = 0;
    for (int64_t i = 0; i < n_out; i++) {
        double dlt = (double)o[i] - o_ref[i];
        num += dlt * dlt;
        den += (double)o_ref[i] * o_ref[i];
    }
    for (int64_t i = 0; i < n_rows; i++) {
        if (!isfinite(lse_ref[i])) continue;
        recall += isfinite(lse[i]) ? fmin(1.0, exp((double)lse[i] - lse_ref[i])) : 0.0;
        rows++;
    }
    r->rel_err = den > 0 ? sqrt(num / den) : 0.0;
    r->mass_recall = rows ? recall / (double)rows : 1.0;
}

static const char *json_row(const attn_result *r, const us_attn_args *a, const char *source, int threads)
{
    static char buf[1024];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", us_method_name(r->method));
    cJSON_AddStringToObject(o, "device", "cpu");
    cJSON_AddStringToObject(o, "input", source);
    cJSON_AddStringToObject(o, "mask", us_mask_kind_name(a->mask.kind));
    cJSON_AddNumberToObject(o, "n", (double)a->k.shape[1]);
    cJSON_AddNumberToObject(o, "nq", (double)a->q.shape[1]);
    cJSON_AddNumberToObject(o, "heads", (double)a->q.shape[0]);
    cJSON_AddNumberToObject(o, "kv_heads", (double)a->k.shape[0]);
    cJSON_AddNumberToObject(o, "head_dim", (double)a->q.shape[2]);
    cJSON_AddStringToObject(o, "dtype", us_dtype_name(a->q.dtype));
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "density", r->density);
    cJSON_AddNumberToObject(o, "pair_density", r->pair_density);
    cJSON_AddNumberToObject(o, "est_ms", r->est_ms);
    cJSON_AddNumberToObject(o, "attn_ms", r->attn_ms);
    cJSON_AddNumberToObject(o, "total_ms", r->est_ms + r->attn_ms);
    cJSON_AddNumberToObject(o, "rel_err", r->rel_err);
    cJSON_AddNumberToObject(o, "mass_recall", r->mass_recall);
    char *s = cJSON_PrintUnformatted(o);
    snprintf(buf, sizeof buf, "%s", s ? s : "{}");
    free(s);
    cJSON_Delete(o);
    return buf;
}

/* Splits a comma list of method names. */
static int parse_methods(const char *list, us_method *out, int cap)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int m = us_method_parse(tok);
        if (m < 0) {
            fprintf(stderr, "unisparse attn: --methods: unknown method '%s' (dense, unisparse, xattention, "
                            "flexprefill, minference, ashape)\n", tok);
            return -1;
        }
        if (n < cap) out[n++] = (us_method)m;
    }
    return n;
}

int cmd_attn(int argc, char **argv)
{
    const char *qkv_path = NULL, *synthetic = NULL, *methods = "dense,unisparse,xattention,flexprefill,minference,ashape";
    const char *device = "cpu", *dtype_name = "f32", *mask_name = "causal";
    int64_t n = 4096;
    int heads = 8, kv_heads = 2, head_dim = 128, repeat = 1, threads = 0;
    int64_t seed = 1;
    bool json = false;
    const char *save_qkv = NULL, *save_selection = NULL, *gpu_kernel = "auto";
    bool block_mean = false;
    us_unisparse_params p = us_unisparse_params_default();
    const us_option opts[] = {
        {"qkv", US_OPT_STRING, &qkv_path, "FILE", "attention input: safetensors with q [Hq,N,d], k, v [Hkv,N,d]"},
        {"synthetic", US_OPT_STRING, &synthetic, "KIND", "structured input: mixed, sinks, local, vertical, slash, needles, random"},
        {"n", US_OPT_INT64, &n, "N", "synthetic: tokens"},
        {"heads", US_OPT_INT, &heads, "H", "synthetic: query heads"},
        {"kv-heads", US_OPT_INT, &kv_heads, "K", "synthetic: key/value heads"},
        {"head-dim", US_OPT_INT, &head_dim, "D", "synthetic: head dim"},
        {"seed", US_OPT_INT64, &seed, "S", "synthetic: random seed"},
        {"dtype", US_OPT_STRING, &dtype_name, "T", "synthetic: f32, f16 or bf16"},
        {"mask", US_OPT_STRING, &mask_name, "M", "synthetic: causal or bidirectional"},
        {"methods", US_OPT_STRING, &methods, "LIST", "comma-separated methods"},
        {"tau", US_OPT_FLOAT, &p.tau, "T", "kept attention mass, (0, 1]"},
        {"block", US_OPT_INT, &p.block, "S", "block size, 64 or 128"},
        {"cq", US_OPT_INT, &p.cq, "C", "query tokens per composite token"},
        {"ck", US_OPT_INT, &p.ck, "C", "key tokens per composite token"},
        {"ch", US_OPT_INT, &p.ch, "C", "query heads per composite token"},
        {"sink", US_OPT_INT, &p.sink_blocks, "B", "sink blocks always kept"},
        {"local", US_OPT_INT, &p.local_blocks, "B", "blocks before the diagonal always kept"},
        {"block-mean", US_OPT_FLAG, &block_mean, NULL,
         "UniSparse: one cover of the block's average mass (the paper's rule) instead of the union of\n"
         "                           each composite row's cover"},
        {"stride", US_OPT_INT, &p.xattn_stride, "S", "XAttention antidiagonal stride"},
        {"gamma", US_OPT_FLOAT, &p.flex_gamma, "G", "FlexPrefill coverage"},
        {"gpu-min-gflop", US_OPT_FLOAT, &p.gpu_min_gflop, "W",
         "cuda: calls with less dense causal attention work than W GFLOP run dense\n"
         "                           (the estimation could not pay; 0 = never; default 200)"},
        {"gpu-kernel", US_OPT_STRING, &gpu_kernel, "K",
         "cuda: attention kernel, auto (the Hopper wgmma kernel where it covers the call and was\n"
         "                           measured faster), mma or wgmma"},
        {"device", US_OPT_STRING, &device, "DEV", "cpu or cuda (dense, unisparse, xattention and flexprefill select\n"
         "                           on the GPU; the other methods select on the CPU and run the GPU kernel)"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"repeat", US_OPT_INT, &repeat, "R", "timed runs per method (median reported)"},
        {"json", US_OPT_FLAG, &json, NULL, "one JSON object per line per method"},
        {"save-qkv", US_OPT_STRING, &save_qkv, "FILE", "write the input (as attention runs it) to FILE"},
        {"save-selection", US_OPT_STRING, &save_selection, "FILE", "cuda: write UniSparse's selection to FILE"},
        {0}};
    int rc = us_options_parse(opts, argc, argv, "unisparse attn (--qkv FILE | --synthetic KIND) [options]",
                              "Runs dense attention and the chosen sparse methods on one input; reports density,\n"
                              "estimation and attention time, and error against dense (rel_err, mass_recall).",
                              NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (block_mean) p.row_union = 0;
    if (!!qkv_path == !!synthetic) {
        fprintf(stderr, "unisparse attn: give exactly one of --qkv FILE and --synthetic KIND\n");
        return 2;
    }
    bool on_gpu = !strcmp(device, "cuda");
    if (!on_gpu && strcmp(device, "cpu")) {
        fprintf(stderr, "unisparse attn: --device %s: must be cpu or cuda\n", device);
        return 2;
    }
    static const char *const kernel_names[] = {"auto", "mma", "wgmma"}; /* us_cuda_kernel's order */
    int kernel = -1;
    for (int k = 0; k < (int)(sizeof kernel_names / sizeof *kernel_names); k++)
        if (!strcmp(gpu_kernel, kernel_names[k])) kernel = k;
    if (kernel < 0) {
        fprintf(stderr, "unisparse attn: --gpu-kernel %s: must be auto, mma or wgmma\n", gpu_kernel);
        return 2;
    }
    if (repeat < 1 || repeat > 1000) {
        fprintf(stderr, "unisparse attn: --repeat %d: must lie in [1, 1000]\n", repeat);
        return 2;
    }
    us_method list[US_METHOD_COUNT * 2];
    int n_methods = parse_methods(methods, list, US_METHOD_COUNT * 2);
    if (n_methods <= 0) return 2;
    us_set_num_threads(threads);

    us_error err;
    us_qkv in;
    memset(&in, 0, sizeof in);
    float *syn = NULL;
    char source[300];
    if (qkv_path) {
        if (us_qkv_load(qkv_path, &in, &err)) {
            fprintf(stderr, "unisparse attn: %s\n", err.msg);
            return 1;
        }
        snprintf(source, sizeof source, "%s", qkv_path);
    } else {
        int kind = us_synthetic_kind_parse(synthetic), mk = us_mask_kind_parse(mask_name);
        int dt = !strcmp(dtype_name, "f32") ? US_F32 : !strcmp(dtype_name, "f16") ? US_F16 : !strcmp(dtype_name, "bf16") ? US_BF16 : -1;
        if (kind < 0 || dt < 0 || (mk != US_MASK_CAUSAL && mk != US_MASK_BIDIRECTIONAL)) {
            fprintf(stderr, "unisparse attn: bad %s '%s' (see --help)\n", kind < 0 ? "--synthetic" : dt < 0 ? "--dtype" : "--mask",
                    kind < 0 ? synthetic : dt < 0 ? dtype_name : mask_name);
            return 2;
        }
        if (n < 1 || n > (1 << 22) || heads < 1 || kv_heads < 1 || head_dim < 8 || (int64_t)heads * n * head_dim > ((int64_t)1 << 32)) {
            fprintf(stderr, "unisparse attn: synthetic shape n=%lld heads=%d head-dim=%d is out of range\n", (long long)n, heads, head_dim);
            return 2;
        }
        size_t nq = (size_t)heads * (size_t)n * (size_t)head_dim, nkv = (size_t)kv_heads * (size_t)n * (size_t)head_dim;
        syn = malloc((nq + 2 * nkv) * sizeof *syn);
        if (!syn) {
            fprintf(stderr, "unisparse attn: no memory for a synthetic input of %zu MiB\n", (nq + 2 * nkv) * 4 >> 20);
            return 1;
        }
        if (us_synthetic_qkv((us_synthetic_kind)kind, n, heads, kv_heads, head_dim, (uint64_t)seed, syn, syn + nq, syn + nq + nkv,
                             NULL, NULL, &err)) {
            fprintf(stderr, "unisparse attn: %s\n", err.msg);
            free(syn);
            return 2;
        }
        if (dt != US_F32) { /* narrow in place: 2-byte values fit in the float buffer */
            uint16_t *h = (uint16_t *)syn;
            for (size_t i = 0; i < nq + 2 * nkv; i++) h[i] = dt == US_F16 ? us_f32_to_f16(syn[i]) : us_f32_to_bf16(syn[i]);
        }
        size_t es = us_dtype_size((us_dtype)dt);
        char *base = (char *)syn;
        in.q = us_tensor_3d(base, (us_dtype)dt, heads, n, head_dim);
        in.k = us_tensor_3d(base + nq * es, (us_dtype)dt, kv_heads, n, head_dim);
        in.v = us_tensor_3d(base + (nq + nkv) * es, (us_dtype)dt, kv_heads, n, head_dim);
        in.mask.kind = (us_mask_kind)mk;
        in.q_offset = -1;
        snprintf(source, sizeof source, "synthetic:%s:seed=%lld", synthetic, (long long)seed);
    }

    us_attn_args a = us_attn_args_default();
    a.q = in.q, a.k = in.k, a.v = in.v, a.mask = in.mask, a.q_offset = in.q_offset, a.scale = in.scale;
    int64_t hq = a.q.shape[0], nq = a.q.shape[1], d = a.q.shape[2];
    int64_t n_out = hq * nq * d, n_rows = hq * nq;
    float *o_ref = malloc((size_t)n_out * sizeof *o_ref), *o = malloc((size_t)n_out * sizeof *o);
    float *lse_ref = malloc((size_t)n_rows * sizeof *lse_ref), *lse = malloc((size_t)n_rows * sizeof *lse);
    int status = 0;
    if (!o_ref || !o || !lse_ref || !lse) {
        fprintf(stderr, "unisparse attn: no memory for outputs\n");
        status = 1;
        goto done;
    }
    if (us_unisparse_params_validate(&p, (int)d, (int)hq, (int)a.k.shape[0], &err)) {
        fprintf(stderr, "unisparse attn: %s\n", err.msg);
        status = 2;
        goto done;
    }
    if (save_qkv) {
        us_tensor tq = a.q, tk = a.k, tv = a.v;
        uint16_t *narrow = NULL;
        if (on_gpu && a.q.dtype == US_F32) { /* the GPU runs bf16: save what it runs */
            size_t nq_el = (size_t)(a.q.shape[0] * a.q.shape[1] * a.q.shape[2]);
            size_t nk_el = (size_t)(a.k.shape[0] * a.k.shape[1] * a.k.shape[2]);
            narrow = malloc((nq_el + 2 * nk_el) * 2);
            if (!narrow) {
                fprintf(stderr, "unisparse attn: no memory to save %s\n", save_qkv);
                status = 1;
                goto done;
            }
            const us_tensor *src[3] = {&a.q, &a.k, &a.v};
            us_tensor *dst[3] = {&tq, &tk, &tv};
            size_t off = 0;
            for (int t = 0; t < 3; t++) {
                *dst[t] = us_tensor_3d(narrow + off, US_BF16, src[t]->shape[0], src[t]->shape[1], src[t]->shape[2]);
                const float *f = (const float *)src[t]->data;
                size_t cnt = (size_t)(src[t]->shape[0] * src[t]->shape[1] * src[t]->shape[2]);
                for (size_t x = 0; x < cnt; x++) narrow[off + x] = us_f32_to_bf16(f[x]);
                off += cnt;
            }
        }
        us_status sv = us_qkv_save(save_qkv, &tq, &tk, &tv, &a.mask, &err);
        free(narrow);
        if (sv) {
            fprintf(stderr, "unisparse attn: %s\n", err.msg);
            status = 1;
            goto done;
        }
    }
    if (on_gpu) {
        status = attn_run_cuda(&a, list, n_methods, &p, repeat, json, source, save_selection, kernel);
        goto done;
    }
    /* dense first: the reference every method is measured against */
    us_progress bar;
    us_progress_start(&bar, "attention", n_methods + 1);
    a.o = us_tensor_3d(o_ref, US_F32, hq, nq, d);
    a.lse = lse_ref;
    attn_result dense;
    if (us_attention_dense(&a, &err)) {
        fprintf(stderr, "unisparse attn: %s\n", err.msg);
        status = 1;
        goto done;
    }
    us_progress_step(&bar, "dense (reference)");
    a.o = us_tensor_3d(o, US_F32, hq, nq, d);
    a.lse = lse;
    int threads_used = threads > 0 ? threads : 0;
    if (!json)
        printf("%-12s %9s %9s %10s %10s %10s %9s %10s %12s\n", "method", "density", "pairs", "est_ms", "attn_ms",
               "total_ms", "speedup", "rel_err", "mass_recall");
    double dense_total = 0;
    for (int i = 0; i < n_methods; i++) {
        attn_result r;
        memset(&r, 0, sizeof r);
        if (run_method(list[i], &a, &p, repeat, &r, &err)) {
            us_progress_end(&bar);
            fprintf(stderr, "unisparse attn: %s: %s\n", us_method_name(list[i]), err.msg);
            status = 1;
            goto done;
        }
        fidelity(o, lse, o_ref, lse_ref, n_out, n_rows, &r);
        us_progress_step(&bar, us_method_name(list[i]));
        if (list[i] == US_METHOD_DENSE) dense = r, dense_total = r.attn_ms;
        if (json) {
            puts(json_row(&r, &a, source, threads_used));
        } else {
            double total = r.est_ms + r.attn_ms;
            char speed[16] = "-";
            if (dense_total > 0) snprintf(speed, sizeof speed, "%.2fx", dense_total / total);
            printf("%-12s %9.4f %9.4f %10.2f %10.2f %10.2f %9s %10.2e %12.6f\n", us_method_name(r.method), r.density,
                   r.pair_density, r.est_ms, r.attn_ms, total, speed, r.rel_err, r.mass_recall);
        }
        fflush(stdout);
    }
    (void)dense;
    us_progress_end(&bar);
done:
    free(o_ref), free(o), free(lse_ref), free(lse), free(syn);
    us_qkv_free(&in);
    return status;
}
