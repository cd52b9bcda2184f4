/* test_gemma3.c: the Gemma 3 text decoder against transformers.
 *
 * assets/gemma3-tiny (scripts/make-gemma3-fixtures.py) is a random-weight fp32 Gemma3ForCausalLM with
 * GQA, a sliding window (8) shorter than the 40-token prompt, one global layer with a linear RoPE
 * factor, and transformers' logits for every position. The prompt runs as one prefill, in chunks
 * against the cache, token by token, and with UniSparse on the global layer; every mode must match
 * within 1e-4 relative (max abs diff / max abs reference) with the same argmax everywhere. Bad inputs
 * must give errors naming the file, tensor, field or limit. */
#include "gemma3_config.h"
#include "gemma3_model.h"
#include "gemma3_weights.h"
#include "safetensors.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_model[1024], g_tmp[64];
static us_gemma3_weights *g_w;
static us_safetensors *g_ref;
static int32_t g_ids[256];
static int64_t g_T, g_V;
static const float *g_logits; /* (T, V) */

static void setup(void)
{
    const char *assets = getenv("US_ASSETS");
    snprintf(g_model, sizeof g_model, "%s/gemma3-tiny", assets ? assets : "assets");
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(g_model, &g_w, &err), US_OK, "%s", err.msg);
    char p[1200];
    snprintf(p, sizeof p, "%s/reference.safetensors", g_model);
    cr_assert_eq(us_safetensors_open(p, &g_ref, &err), US_OK, "%s", err.msg);
    const us_st_tensor *ids = us_safetensors_find(g_ref, "ids"), *lg = us_safetensors_find(g_ref, "logits");
    cr_assert(ids && lg && !strcmp(ids->dtype_name, "I64") && lg->dtype == US_F32 && lg->ndim == 2);
    g_T = ids->shape[0];
    g_V = lg->shape[1];
    cr_assert(g_T <= 256 && lg->shape[0] == g_T && g_V == g_w->cfg.vocab_size);
    for (int64_t t = 0; t < g_T; t++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + t * 8, 8);
        g_ids[t] = (int32_t)v;
    }
    g_logits = lg->data;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/us_gemma3_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    us_gemma3_weights_free(&g_w);
    us_safetensors_close(&g_ref);
    DIR *d = opendir(g_tmp);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", g_tmp, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_tmp);
}

TestSuite(gemma3, .init = setup, .fini = teardown);

/* max |got - ref| / max |ref| over rows [0, T), and the count of rows whose argmax differs */
static double compare(const float *got, const char *mode)
{
    double md = 0.0, mr = 0.0;
    int bad_argmax = 0;
    for (int64_t t = 0; t < g_T; t++) {
        const float *a = got + t * g_V, *r = g_logits + t * g_V;
        int64_t ia = 0, ir = 0;
        for (int64_t i = 0; i < g_V; i++) {
            md = fmax(md, fabs((double)a[i] - r[i]));
            mr = fmax(mr, fabs((double)r[i]));
            if (a[i] > a[ia]) ia = i;
            if (r[i] > r[ir]) ir = i;
        }
        bad_argmax += ia != ir;
    }
    double rel = md / mr;
    fprintf(stderr, "gemma3-tiny %-14s max rel logit error %.3g (max abs %.3g of %.3g), argmax mismatches %d/%lld\n",
            mode, rel, md, mr, bad_argmax, (long long)g_T);
    cr_expect_eq(bad_argmax, 0, "%s: argmax differs at %d positions", mode, bad_argmax);
    cr_expect(rel <= 1e-4, "%s: relative logit error %g > 1e-4", mode, rel);
    return rel;
}

static us_gemma3_model *make(int max_batch, us_method method)
{
    us_gemma3_opts o = us_gemma3_opts_default();
    o.max_batch = max_batch;
    o.method = method;
    o.params.block = 64;
    us_gemma3_model *m = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_model_create(g_w, &o, &m, &err), US_OK, "%s", err.msg);
    return m;
}

Test(gemma3, config_matches_fixture)
{
    const us_gemma3_config *c = &g_w->cfg;
    cr_expect_eq(c->num_layers, 3);
    cr_expect(c->is_global[2] && !c->is_global[0] && !c->is_global[1]);
    cr_expect_eq(c->sliding_window, 8);
    cr_expect_eq(c->head_dim, 32);
    cr_expect(c->rope_global_factor == 2.0f, "factor %g", (double)c->rope_global_factor);
    cr_expect(c->rope_local_base == 100.0f, "local base %g", (double)c->rope_local_base);
    cr_expect(g_T > 2 * c->sliding_window, "the prompt must cross the sliding window");
}

Test(gemma3, full_prefill)
{
    us_gemma3_model *m = make(0, US_METHOD_DENSE);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    us_error err;
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out, &err), US_OK, "%s", err.msg);
    cr_expect_eq(us_gemma3_n_past(m), g_T);
    compare(out, "prefill");
    /* reset and again: the cache is reused, the result identical */
    us_gemma3_reset(m);
    float *out2 = malloc((size_t)(g_T * g_V) * sizeof *out2);
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out2, &err), US_OK, "%s", err.msg);
    cr_expect_eq(memcmp(out, out2, (size_t)(g_T * g_V) * sizeof *out), 0);
    free(out), free(out2);
    us_gemma3_model_free(&m);
}

Test(gemma3, chunked_prefill)
{
    us_gemma3_model *m = make(0, US_METHOD_DENSE);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    us_error err;
    for (int64_t p = 0; p < g_T;) {
        int64_t n = p == 0 ? 13 : p == 13 ? 13 : g_T - p;
        cr_assert_eq(us_gemma3_forward(m, g_ids + p, n, n, out + p * g_V, &err), US_OK, "%s", err.msg);
        p += n;
    }
    compare(out, "chunks 13+13+");
    us_gemma3_model_free(&m);
    /* the internal split: max_batch 7 cuts one call into chunks; last 5 logits only */
    m = make(7, US_METHOD_DENSE);
    memset(out, 0, (size_t)(g_T * g_V) * sizeof *out);
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out, &err), US_OK, "%s", err.msg);
    compare(out, "max_batch 7");
    us_gemma3_reset(m);
    float *last = malloc((size_t)(5 * g_V) * sizeof *last);
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, 5, last, &err), US_OK, "%s", err.msg);
    cr_expect_eq(memcmp(last, out + (g_T - 5) * g_V, (size_t)(5 * g_V) * sizeof *last), 0,
                 "the last 5 logits rows differ from the full run's");
    free(last), free(out);
    us_gemma3_model_free(&m);
}

Test(gemma3, token_by_token)
{
    us_gemma3_model *m = make(0, US_METHOD_DENSE);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    us_error err;
    for (int64_t p = 0; p < g_T; p++)
        cr_assert_eq(us_gemma3_forward(m, g_ids + p, 1, 1, out + p * g_V, &err), US_OK, "%s", err.msg);
    compare(out, "token by token");
    free(out);
    us_gemma3_model_free(&m);
}

Test(gemma3, unisparse_global_layers)
{
    us_gemma3_model *m = make(0, US_METHOD_UNISPARSE);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    us_error err;
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out, &err), US_OK, "%s", err.msg);
    compare(out, "unisparse");
    free(out);
    us_gemma3_model_free(&m);
}

/* ---- bad inputs --------------------------------------------------------------------------- */

static void copy_file(const char *src, const char *dst, long keep)
{
    FILE *f = fopen(src, "rb"), *g = fopen(dst, "wb");
    cr_assert(f && g);
    char buf[65536];
    long done = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (keep >= 0 && done + (long)n > keep) n = (size_t)(keep - done);
        fwrite(buf, 1, n, g);
        done += (long)n;
        if (keep >= 0 && done >= keep) break;
    }
    fclose(f), fclose(g);
}

static void tmp_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_tmp, name); }

static void model_file(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_model, name); }

static void expect_load_error(const char *must1, const char *must2)
{
    us_gemma3_weights *w = NULL;
    us_error err = {0};
    cr_assert_neq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "loading %s should fail", g_tmp);
    cr_expect_null(w);
    cr_expect(strstr(err.msg, must1) != NULL, "message \"%s\" should name %s", err.msg, must1);
    if (must2) cr_expect(strstr(err.msg, must2) != NULL, "message \"%s\" should name %s", err.msg, must2);
}

Test(gemma3, missing_config)
{
    char a[1200], b[1200];
    model_file(a, sizeof a, "model.safetensors");
    tmp_path(b, sizeof b, "model.safetensors");
    copy_file(a, b, -1);
    expect_load_error("config.json", g_tmp);
}

Test(gemma3, missing_weights)
{
    char a[1200], b[1200];
    model_file(a, sizeof a, "config.json");
    tmp_path(b, sizeof b, "config.json");
    copy_file(a, b, -1);
    expect_load_error("model.safetensors", g_tmp);
}

Test(gemma3, truncated_safetensors)
{
    char a[1200], b[1200];
    model_file(a, sizeof a, "config.json");
    tmp_path(b, sizeof b, "config.json");
    copy_file(a, b, -1);
    model_file(a, sizeof a, "model.safetensors");
    tmp_path(b, sizeof b, "model.safetensors");
    copy_file(a, b, 100000);
    expect_load_error(b, NULL);
}

Test(gemma3, wrong_shape)
{
    char a[1200], b[1200];
    model_file(a, sizeof a, "config.json");
    tmp_path(b, sizeof b, "config.json");
    copy_file(a, b, -1);
    model_file(a, sizeof a, "model.safetensors");
    us_safetensors *st = NULL;
    us_error err;
    cr_assert_eq(us_safetensors_open(a, &st, &err), US_OK, "%s", err.msg);
    int n = us_safetensors_count(st);
    us_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    const char *victim = "model.layers.1.self_attn.k_proj.weight";
    int found = 0;
    for (int i = 0; i < n; i++) {
        ts[i] = *us_safetensors_at(st, i);
        if (!strcmp(ts[i].name, victim)) { /* [32, 64] -> [64, 32]: same bytes, wrong shape */
            int64_t r = ts[i].shape[0];
            ts[i].shape[0] = ts[i].shape[1];
            ts[i].shape[1] = r;
            found = 1;
        }
    }
    cr_assert(found, "fixture lacks %s", victim);
    tmp_path(b, sizeof b, "model.safetensors");
    cr_assert_eq(us_safetensors_write(b, ts, n, NULL, 0, &err), US_OK, "%s", err.msg);
    free(ts);
    us_safetensors_close(&st);
    expect_load_error(b, victim);
}

Test(gemma3, sharded_with_prefixes)
{
    /* two shards, language_model.model.* names, an index: loads and gives the same logits */
    char a[1200], b[1200];
    model_file(a, sizeof a, "config.json");
    tmp_path(b, sizeof b, "config.json");
    copy_file(a, b, -1);
    model_file(a, sizeof a, "model.safetensors");
    us_safetensors *st = NULL;
    us_error err;
    cr_assert_eq(us_safetensors_open(a, &st, &err), US_OK, "%s", err.msg);
    int n = us_safetensors_count(st);
    us_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    char *json = malloc(65536);
    size_t jl = (size_t)snprintf(json, 65536, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < n; i++) {
        ts[i] = *us_safetensors_at(st, i);
        char base[256];
        snprintf(base, sizeof base, "%s", strncmp(ts[i].name, "model.", 6) ? ts[i].name : ts[i].name + 6);
        snprintf(ts[i].name, sizeof ts[i].name, "language_model.model.%.200s", base);
        jl += (size_t)snprintf(json + jl, 65536 - jl, "%s\"%s\": \"part-%d.safetensors\"", i ? ", " : "", ts[i].name,
                               i < n / 2 ? 1 : 2);
    }
    snprintf(json + jl, 65536 - jl, "}}");
    tmp_path(b, sizeof b, "part-1.safetensors");
    cr_assert_eq(us_safetensors_write(b, ts, n / 2, NULL, 0, &err), US_OK, "%s", err.msg);
    tmp_path(b, sizeof b, "part-2.safetensors");
    cr_assert_eq(us_safetensors_write(b, ts + n / 2, n - n / 2, NULL, 0, &err), US_OK, "%s", err.msg);
    tmp_path(b, sizeof b, "model.safetensors.index.json");
    FILE *f = fopen(b, "w");
    fputs(json, f);
    fclose(f);
    free(json), free(ts);
    us_safetensors_close(&st);

    us_gemma3_weights *w = NULL;
    cr_assert_eq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "%s", err.msg);
    us_gemma3_model *m = NULL;
    cr_assert_eq(us_gemma3_model_create(w, NULL, &m, &err), US_OK, "%s", err.msg);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out, &err), US_OK, "%s", err.msg);
    compare(out, "sharded");
    free(out);
    us_gemma3_model_free(&m);
    us_gemma3_weights_free(&w);
}

Test(gemma3, prompt_too_long)
{
    us_gemma3_model *m = make(0, US_METHOD_DENSE);
    const int64_t limit = g_w->cfg.max_position_embeddings;
    int32_t *ids = calloc((size_t)limit + 1, sizeof *ids);
    us_error err = {0};
    cr_expect_neq(us_gemma3_forward(m, ids, limit + 1, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "max_position_embeddings") != NULL, "message: %s", err.msg);
    cr_expect_eq(us_gemma3_n_past(m), 0);
    /* 40 cached + 30 new crosses the limit too */
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, 0, NULL, &err), US_OK, "%s", err.msg);
    cr_expect_neq(us_gemma3_forward(m, ids, limit - g_T + 1, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "max_position_embeddings") != NULL, "message: %s", err.msg);
    /* a bad id */
    ids[3] = (int32_t)g_V;
    us_gemma3_reset(m);
    cr_expect_neq(us_gemma3_forward(m, ids, 5, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "vocab_size") != NULL, "message: %s", err.msg);
    free(ids);
    us_gemma3_model_free(&m);
}

/* ---- config forms ------------------------------------------------------------------------- */

Test(gemma3, config_forms)
{
    us_gemma3_config a, b, v;
    us_error err;
    const char *old_form = "{\"hidden_size\": 2560, \"num_hidden_layers\": 34, \"rope_scaling\": {\"rope_type\": "
                           "\"linear\", \"factor\": 8.0}, \"sliding_window\": 1024}";
    const char *new_form =
        "{\"hidden_size\": 2560, \"num_hidden_layers\": 34, \"sliding_window\": 1024, \"layer_types\": ["
        "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
        "\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
        "\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
        "\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_attention\","
        "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\","
        "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\","
        "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\"],"
        "\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 8.0, \"rope_theta\": 1000000.0},"
        "\"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}}}";
    cr_assert_eq(us_gemma3_config_parse(old_form, "old.json", &a, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_gemma3_config_parse(new_form, "new.json", &b, &err), US_OK, "%s", err.msg);
    cr_expect_eq(memcmp(&a, &b, sizeof a), 0, "the two forms differ");
    cr_expect(a.is_global[5] && a.is_global[11] && !a.is_global[0] && !a.is_global[33]);
    cr_expect(a.rope_global_factor == 8.0f && a.rope_local_base == 1e4f && a.rope_global_base == 1e6f);
    cr_expect_eq(a.head_dim, 256); /* a default */
    char vlm[4096];
    snprintf(vlm, sizeof vlm, "{\"model_type\": \"gemma3\", \"text_config\": %s, \"vision_config\": {}}", old_form);
    cr_assert_eq(us_gemma3_config_parse(vlm, "vlm.json", &v, &err), US_OK, "%s", err.msg);
    cr_expect_eq(memcmp(&a, &v, sizeof a), 0, "text_config nesting differs");

    struct { const char *json, *field; } bad[] = {
        {"{\"hidden_size\": \"big\"}", "hidden_size"},
        {"{\"num_attention_heads\": 3}", "num_attention_heads"},
        {"{\"num_hidden_layers\": 2, \"layer_types\": [\"full_attention\"]}", "layer_types"},
        {"{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}", "rope_scaling"},
        {"{\"final_logit_softcapping\": 30.0}", "final_logit_softcapping"},
        {"{\"head_dim\": 0}", "head_dim"},
        {"[1, 2]", "bad.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        cr_expect_neq(us_gemma3_config_parse(bad[i].json, "bad.json", &a, &err), US_OK, "%s should fail", bad[i].json);
        cr_expect(strstr(err.msg, bad[i].field) && strstr(err.msg, "bad.json"), "message \"%s\" should name %s",
                  err.msg, bad[i].field);
    }
}

/* ---- stored dtypes ------------------------------------------------------------------------ */

/* Writes the fixture to g_tmp with every tensor rounded to dtype (bf16 / f16) and stored either in that
 * dtype or, already rounded, as f32; returns the logits of the full prompt. */
static float *run_rounded(us_dtype dtype, int store_f32)
{
    char a[1200], b[1200];
    model_file(a, sizeof a, "config.json");
    tmp_path(b, sizeof b, "config.json");
    copy_file(a, b, -1);
    model_file(a, sizeof a, "model.safetensors");
    us_safetensors *st = NULL;
    us_error err;
    cr_assert_eq(us_safetensors_open(a, &st, &err), US_OK, "%s", err.msg);
    int n = us_safetensors_count(st);
    us_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    for (int i = 0; i < n; i++) {
        ts[i] = *us_safetensors_at(st, i);
        size_t cnt = ts[i].nbytes / 4;
        const float *src = ts[i].data;
        if (store_f32) {
            float *dst = malloc(cnt * sizeof *dst);
            for (size_t j = 0; j < cnt; j++)
                dst[j] = dtype == US_BF16 ? us_bf16_to_f32(us_f32_to_bf16(src[j])) : us_f16_to_f32(us_f32_to_f16(src[j]));
            bufs[i] = dst;
        } else {
            uint16_t *dst = malloc(cnt * sizeof *dst);
            for (size_t j = 0; j < cnt; j++) dst[j] = dtype == US_BF16 ? us_f32_to_bf16(src[j]) : us_f32_to_f16(src[j]);
            bufs[i] = dst;
            snprintf(ts[i].dtype_name, sizeof ts[i].dtype_name, "%s", dtype == US_BF16 ? "BF16" : "F16");
            ts[i].dtype = (int)dtype;
            ts[i].elem_size = 2;
            ts[i].nbytes = cnt * 2;
        }
        ts[i].data = bufs[i];
    }
    tmp_path(b, sizeof b, "model.safetensors");
    cr_assert_eq(us_safetensors_write(b, ts, n, NULL, 0, &err), US_OK, "%s", err.msg);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs), free(ts);
    us_safetensors_close(&st);

    us_gemma3_weights *w = NULL;
    cr_assert_eq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "%s", err.msg);
    cr_assert_eq((int)w->embed.dtype, store_f32 ? (int)US_F32 : (int)dtype);
    us_gemma3_model *m = NULL;
    cr_assert_eq(us_gemma3_model_create(w, NULL, &m, &err), US_OK, "%s", err.msg);
    float *out = malloc((size_t)(g_T * g_V) * sizeof *out);
    cr_assert_eq(us_gemma3_forward(m, g_ids, g_T, g_T, out, &err), US_OK, "%s", err.msg);
    us_gemma3_model_free(&m);
    us_gemma3_weights_free(&w);
    return out;
}

Test(gemma3, stored_dtypes)
{
    /* bf16 and f16 weights, converted per tile, must give what the same values stored as f32 give
     * (sqrt(64) = 8 is exact in both, so the embedding rounding adds nothing here) */
    const us_dtype dts[] = {US_BF16, US_F16};
    for (int i = 0; i < 2; i++) {
        float *ref = run_rounded(dts[i], 1), *got = run_rounded(dts[i], 0);
        double md = 0.0, mr = 0.0;
        for (int64_t j = 0; j < g_T * g_V; j++) {
            md = fmax(md, fabs((double)got[j] - ref[j]));
            mr = fmax(mr, fabs((double)ref[j]));
        }
        fprintf(stderr, "gemma3-tiny %s weights vs the same values in f32: max rel %.3g\n", us_dtype_name(dts[i]),
                md / mr);
        cr_expect(md / mr <= 1e-6, "%s: %g", us_dtype_name(dts[i]), md / mr);
        free(ref), free(got);
    }
}
