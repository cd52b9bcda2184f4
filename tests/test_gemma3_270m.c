/* test_gemma3_270m.c: the real Gemma 3 270M Q4_K_M GGUF through the runtime, against transformers.
 *
 * assets/gemma3-270m/reference.json (scripts/make-gemma3-270m-reference.py) holds, for a fixed
 * prompt, transformers' token ids (its tokenizer built from the same GGUF), the top-20 next-token
 * logits and the greedy continuation of 32 tokens, all computed by transformers from the same GGUF
 * file (dequantised to f32). Both sides use identical weights, so only fp32 summation order differs:
 *   - prompt ids identical (our SentencePiece built from tokenizer.ggml.* arrays);
 *   - top-1 next token identical;
 *   - at each of the reference's top-20 ids, |ours - ref| <= 1e-4 * |ref top-1 logit| (observed: 7e-7);
 *   - greedy 32 tokens identical.
 * Skipped, saying so, when models/ lacks the file (scripts/fetch-gemma3-270m.sh fetches it). */
#include "gemma3_gguf.h"
#include "gemma3_model.h"
#include "gemma3_weights.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGIT_TOL 1e-4 /* relative to the top-1 logit's magnitude; observed 7e-7 */

static void asset_path(char *out, size_t cap, const char *rel)
{
    const char *env = getenv("US_ASSETS");
    if (env && env[0]) {
        snprintf(out, cap, "%s/%s", env, rel);
        return;
    }
    const char *src = __FILE__;
    const char *tail = strstr(src, "tests/test_gemma3_270m.c");
    int root = tail ? (int)(tail - src) : 0;
    snprintf(out, cap, "%.*sassets/%s", root, src, rel);
}

static void find_model(char *out, size_t cap)
{
    char pattern[1024];
    asset_path(pattern, sizeof pattern, "../models/gemma-3-270m-q4_k_m.gguf");
    glob_t gl;
    int rc = glob(pattern, 0, NULL, &gl);
    if (rc != 0 || gl.gl_pathc == 0) {
        if (rc == 0) globfree(&gl);
        cr_skip_test("Gemma 3 270M not present (%s): run scripts/fetch-gemma3-270m.sh to test against it", pattern);
    }
    snprintf(out, cap, "%s", gl.gl_pathv[0]);
    globfree(&gl);
}

static cJSON *load_ref(void)
{
    char p[1024];
    asset_path(p, sizeof p, "gemma3-270m/reference.json");
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "cannot open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    b[n] = '\0';
    cJSON *j = cJSON_Parse(b);
    free(b);
    cr_assert_not_null(j, "%s: not JSON", p);
    return j;
}

static int int_array(const cJSON *j, const char *key, int32_t *out, int cap)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsArray(a), "reference.json: no array \"%s\"", key);
    int n = 0;
    for (const cJSON *e = a->child; e; e = e->next) {
        cr_assert(n < cap);
        out[n++] = (int32_t)e->valuedouble;
    }
    return n;
}

TestSuite(gemma3_270m);

Test(gemma3_270m, config_from_gguf)
{
    char path[1024];
    find_model(path, sizeof path);
    us_gemma3_weights *w = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(path, &w, &err), US_OK, "%s", err.msg);
    const us_gemma3_config *c = &w->cfg;
    cr_expect_eq(c->hidden_size, 640);
    cr_expect_eq(c->intermediate_size, 2048);
    cr_expect_eq(c->num_layers, 18);
    cr_expect_eq(c->num_heads, 4);
    cr_expect_eq(c->num_kv_heads, 1);
    cr_expect_eq(c->head_dim, 256);
    cr_expect_eq(c->sliding_window, 512);
    cr_expect_eq(c->max_position_embeddings, 32768);
    cr_expect_eq(c->vocab_size, 262144);
    cr_expect_eq(c->query_pre_attn_scalar, 256.0f);
    cr_expect_eq(c->rope_global_base, 1e6f);
    cr_expect_eq(c->rope_local_base, 1e4f);
    cr_expect_eq(c->rope_global_factor, 1.0f);
    cr_expect(fabsf(c->rms_norm_eps - 1e-6f) < 1e-12f);
    cr_expect(c->tie_word_embeddings);
    for (int l = 0; l < 18; l++) cr_expect_eq(c->is_global[l], (l + 1) % 6 == 0, "layer %d", l);
    cr_expect_eq(c->bos_id, 2);
    cr_expect_eq(c->eos_id, 1);
    /* quantised matrices stay quantised; norms are as stored (no +1 added: values near 1 + w) */
    cr_expect_neq(w->layers[0].q.ggml_type, 0u);
    cr_expect_neq(w->embed.ggml_type, 0u);
    cr_expect(w->embed_scale == sqrtf(640.0f));
    us_gemma3_weights_free(&w);
}

Test(gemma3_270m, tokenizer_from_gguf)
{
    char path[1024];
    find_model(path, sizeof path);
    us_error err;
    us_gguf *g = NULL;
    us_tokenizer *tok = NULL;
    cr_assert_eq(us_gguf_open(path, &g, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_gemma3_tokenizer_from_gguf(g, &tok, &err), US_OK, "%s", err.msg);
    cr_expect_eq(us_tokenizer_vocab_size(tok), 262144);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<bos>"), 2);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<eos>"), 1);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<pad>"), 0);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<end_of_turn>"), 106);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<start_of_turn>"), 105);
    cr_expect_eq(us_tokenizer_piece_to_id(tok, "<image_soft_token>"), 262144);

    cJSON *ref = load_ref();
    const char *prompt = cJSON_GetObjectItemCaseSensitive(ref, "prompt")->valuestring;
    int32_t want[512], got[512];
    int n_want = int_array(ref, "ids", want, 512);
    size_t n = 0;
    got[0] = 2;
    cr_assert_eq(us_tokenizer_encode(tok, prompt, strlen(prompt), got + 1, 511, &n, &err), US_OK, "%s", err.msg);
    cr_assert_eq((int)n + 1, n_want, "%zu + BOS prompt ids, transformers has %d", n, n_want);
    for (int i = 0; i < n_want; i++) cr_expect_eq(got[i], want[i], "id %d: %d vs transformers %d", i, got[i], want[i]);

    /* transformers' ids for texts in several scripts, with whitespace runs, tabs and newlines,
     * digits, emoji and special tokens written in the text (no BOS) */
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(ref, "tokenizer_cases");
    cr_assert(cJSON_IsArray(cases) && cJSON_GetArraySize(cases) >= 8, "reference has no tokenizer_cases");
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
        int32_t cw[512];
        int nw = int_array(c, "ids", cw, 512);
        cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), got, 512, &n, &err), US_OK, "%s", err.msg);
        cr_expect_eq((int)n, nw, "%zu ids for \"%s\", transformers has %d", n, text, nw);
        for (int i = 0; i < nw && i < (int)n; i++)
            if (got[i] != cw[i]) {
                cr_expect_eq(got[i], cw[i], "\"%s\": id %d is %d, transformers has %d", text, i, got[i], cw[i]);
                break;
            }
    }

    /* the chat template's special pieces come out by id */
    const char *turn = "<start_of_turn>user\nhi<end_of_turn>\n";
    cr_assert_eq(us_tokenizer_encode(tok, turn, strlen(turn), got, 512, &n, &err), US_OK, "%s", err.msg);
    cr_expect(n >= 4 && got[0] == 105 && got[n - 2] == 106, "first %d, next to last %d", got[0], got[n - 2]);
    cJSON_Delete(ref);
    us_tokenizer_free(&tok);
    us_gguf_close(&g);
}

Test(gemma3_270m, logits_and_greedy_match_transformers, .timeout = 600)
{
    char path[1024];
    find_model(path, sizeof path);
    us_error err;
    us_gemma3_weights *w = NULL;
    us_gemma3_model *m = NULL;
    cr_assert_eq(us_gemma3_weights_load(path, &w, &err), US_OK, "%s", err.msg);
    us_gemma3_opts o = us_gemma3_opts_default();
    o.max_ctx = 256;
    cr_assert_eq(us_gemma3_model_create(w, &o, &m, &err), US_OK, "%s", err.msg);
    cJSON *ref = load_ref();
    int32_t ids[256], top_ids[64], greedy[64];
    const int T = int_array(ref, "ids", ids, 200), K = int_array(ref, "top_ids", top_ids, 64);
    const int G = int_array(ref, "greedy", greedy, 64);
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(ref, "top_logits");
    cr_assert(cJSON_IsArray(tl) && cJSON_GetArraySize(tl) == K && G == 32);

    const int64_t V = w->cfg.vocab_size;
    float *logits = malloc((size_t)V * sizeof *logits);
    cr_assert_not_null(logits);
    cr_assert_eq(us_gemma3_forward(m, ids, T, 1, logits, &err), US_OK, "%s", err.msg);
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    cr_expect_eq(best, top_ids[0], "top-1 %lld, transformers %d", (long long)best, top_ids[0]);
    const double top1 = fabs(cJSON_GetArrayItem(tl, 0)->valuedouble);
    double worst = 0.0;
    for (int i = 0; i < K; i++) {
        const double r = cJSON_GetArrayItem(tl, i)->valuedouble, d = fabs((double)logits[top_ids[i]] - r);
        if (d > worst) worst = d;
        cr_expect(d <= LOGIT_TOL * top1, "top %d (id %d): %.6f vs transformers %.6f", i, top_ids[i],
                  (double)logits[top_ids[i]], r);
    }
    fprintf(stderr, "gemma3-270m next-token top-%d logits: max abs diff %.3g, %.3g relative to |top-1| = %.3f\n", K,
            worst, worst / top1, top1);

    /* greedy: 32 tokens, no stop tokens, one decode step each */
    int32_t next = (int32_t)best;
    for (int g = 0; g < G; g++) {
        cr_assert_eq(next, greedy[g], "greedy token %d: %d, transformers %d", g, next, greedy[g]);
        if (g + 1 == G) break;
        cr_assert_eq(us_gemma3_forward(m, &next, 1, 1, logits, &err), US_OK, "%s", err.msg);
        best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        next = (int32_t)best;
    }
    free(logits);
    cJSON_Delete(ref);
    us_gemma3_model_free(&m);
    us_gemma3_weights_free(&w);
}

Test(gemma3_270m, truncated_file_names_the_file)
{
    char path[1024];
    find_model(path, sizeof path);
    char tmp[] = "/tmp/us_gemma3_270m_XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert(fd >= 0);
    FILE *in = fopen(path, "rb");
    cr_assert_not_null(in);
    static char buf[1 << 16];
    size_t left = 4u << 20; /* the header and part of the data */
    while (left) {
        size_t r = fread(buf, 1, left < sizeof buf ? left : sizeof buf, in);
        if (!r) break;
        cr_assert_eq(write(fd, buf, r), (ssize_t)r);
        left -= r;
    }
    fclose(in);
    close(fd);
    us_gemma3_weights *w = NULL;
    us_error err;
    us_status s = us_gemma3_weights_load(tmp, &w, &err);
    unlink(tmp);
    cr_expect_neq(s, US_OK);
    cr_expect_null(w);
    cr_expect(strstr(err.msg, tmp) != NULL, "message does not name the file: %s", err.msg);
}
