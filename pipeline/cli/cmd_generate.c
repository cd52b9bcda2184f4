/* cmd_generate.c: `unisparse generate`: text generation with the Gemma 3 runtime on the CPU.
 *
 * The model is a GGUF file (or a Hugging Face directory with tokenizer.model); the prompt is encoded
 * with BOS (or rendered with the chat template), prefilled in chunks (a progress bar on a terminal),
 * then decoded one token at a time: greedy by default, or sampled with temperature / top-k / top-p.
 * Generation stops at eos, <end_of_turn> or --max-tokens. Text streams to stdout as it is decoded;
 * --json prints one object instead. Exit status: 0 success, 1 bad input or failure, 2 bad usage. */
#include "chat_template.h"
#include "commands.h"
#include "gemma3_gguf.h"
#include "gemma3_model.h"
#include "options.h"
#include "progress.h"
#include "qkv_file.h"
#include "stats.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREFILL_CHUNK 256
#define MAX_SAMPLE_VOCAB 262144 /* never sample the image soft token row or beyond */

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* splitmix64 */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    float p;
    int32_t id;
} cand;

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

/* Greedy when temperature <= 0; otherwise softmax(logits / T) restricted to the top-k, then to the
 * smallest prefix with mass >= top_p. cands: V entries of scratch. */
static int32_t pick(const float *logits, int V, float temperature, int top_k, float top_p, uint64_t *rng,
                    cand *cands)
{
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (!(temperature > 0.0f)) return best;
    for (int i = 0; i < V; i++) cands[i] = (cand){(logits[i] - logits[best]) / temperature, i};
    qsort(cands, (size_t)V, sizeof *cands, cand_desc);
    int n = top_k > 0 && top_k < V ? top_k : V;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (cands[i].p = expf(cands[i].p));
    if (top_p > 0.0f && top_p < 1.0f) {
        double acc = 0.0;
        int m = 0;
        while (m < n && acc < top_p * sum) acc += cands[m++].p;
        n = m > 0 ? m : 1;
        sum = acc > 0.0 ? acc : cands[0].p;
    }
    double u = (double)(rng_next(rng) >> 11) * 0x1.0p-53 * sum, acc = 0.0;
    for (int i = 0; i < n; i++)
        if ((acc += cands[i].p) > u) return cands[i].id;
    return cands[n - 1].id;
}

/* Writes the part of the decoded text not yet printed, holding back a trailing U+FFFD (a UTF-8
 * sequence cut between byte pieces). */
static void stream_text(const us_tokenizer *tok, const int32_t *gen, size_t n, size_t *printed)
{
    char *text = NULL;
    size_t len = 0;
    if (us_tokenizer_decode(tok, gen, n, 0, &text, &len, NULL)) return;
    size_t end = len;
    if (end >= 3 && !memcmp(text + end - 3, "\xEF\xBF\xBD", 3)) end -= 3;
    if (end > *printed) {
        fwrite(text + *printed, 1, end - *printed, stdout);
        fflush(stdout);
        *printed = end;
    }
    free(text);
}

/* --dump-qkv LAYER:FILE: checks the layer (a global one: the file's causal mask cannot express a
 * sliding window) and starts recording its queries. Returns 0, or the exit status after a message. */
static int setup_dump(const char *spec, const us_gemma3_config *c, us_gemma3_model *m, int64_t n_prompt, int *layer,
                      const char **file, float **q)
{
    char *end = NULL;
    long l = strtol(spec, &end, 10);
    if (end == spec || *end != ':' || end[1] == '\0') {
        fprintf(stderr, "unisparse generate: --dump-qkv %s: expected LAYER:FILE\n", spec);
        return 2;
    }
    if (l < 0 || l >= c->num_layers || !c->is_global[l]) {
        fprintf(stderr, "unisparse generate: --dump-qkv: layer %ld is not a global layer of this model (global:", l);
        for (int i = 0; i < c->num_layers; i++)
            if (c->is_global[i]) fprintf(stderr, " %d", i);
        fprintf(stderr, ")\n");
        return 2;
    }
    size_t n = (size_t)c->num_heads * (size_t)n_prompt * (size_t)c->head_dim;
    *q = malloc(n * sizeof **q);
    if (!*q) {
        fprintf(stderr, "unisparse generate: --dump-qkv: no memory for %zu MiB of queries\n", n * 4 >> 20);
        return 1;
    }
    us_error err;
    if (us_gemma3_capture_queries(m, (int)l, *q, n_prompt, &err)) {
        fprintf(stderr, "unisparse generate: --dump-qkv: %s\n", err.msg);
        return 1;
    }
    *layer = (int)l;
    *file = end + 1;
    return 0;
}

/* Writes the recorded queries and the layer's cached keys and values, contiguous, in the
 * `unisparse attn --qkv` format. The file's scale is the default 1/sqrt(d); when the model scales by
 * query_pre_attn_scalar^-0.5 instead, the queries are multiplied by sqrt(d / query_pre_attn_scalar)
 * so that the same scores come out. */
static int write_dump(const char *file, const us_gemma3_config *c, us_gemma3_model *m, int layer, float *q,
                      int64_t n)
{
    us_error err;
    us_tensor kc, vc;
    int status = 1;
    float *k = NULL, *v = NULL;
    us_gemma3_capture_queries(m, -1, NULL, 0, NULL);
    if (us_gemma3_cached_kv(m, layer, &kc, &vc, &err)) {
        fprintf(stderr, "unisparse generate: --dump-qkv: %s\n", err.msg);
        return 1;
    }
    const int64_t H = c->num_heads, K = c->num_kv_heads, d = c->head_dim;
    k = malloc((size_t)(K * n * d) * sizeof *k);
    v = malloc((size_t)(K * n * d) * sizeof *v);
    if (!k || !v) {
        fprintf(stderr, "unisparse generate: --dump-qkv: no memory\n");
        goto out;
    }
    for (int64_t h = 0; h < K; h++)
        for (int64_t t = 0; t < n; t++) {
            memcpy(k + (h * n + t) * d, (const float *)kc.data + h * kc.stride[0] + t * d, (size_t)d * sizeof *k);
            memcpy(v + (h * n + t) * d, (const float *)vc.data + h * vc.stride[0] + t * d, (size_t)d * sizeof *v);
        }
    const float fix = sqrtf((float)d / c->query_pre_attn_scalar);
    if (fabsf(fix - 1.0f) > 1e-6f)
        for (int64_t x = 0; x < H * n * d; x++) q[x] *= fix;
    us_tensor tq = us_tensor_3d(q, US_F32, H, n, d), tk = us_tensor_3d(k, US_F32, K, n, d),
              tv = us_tensor_3d(v, US_F32, K, n, d);
    us_mask mask = {US_MASK_CAUSAL, NULL, 0};
    if (us_qkv_save(file, &tq, &tk, &tv, &mask, &err)) {
        fprintf(stderr, "unisparse generate: --dump-qkv: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "unisparse generate: wrote layer %d's q [%lld, %lld, %lld], k and v [%lld, %lld, %lld] to %s\n",
            layer, (long long)H, (long long)n, (long long)d, (long long)K, (long long)n, (long long)d, file);
    status = 0;
out:
    free(k), free(v);
    return status;
}

int cmd_generate(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *attention = "dense";
    int max_tokens = 128, top_k = 0, threads = 0;
    int64_t seed = 0;
    float temperature = 0.0f, top_p = 1.0f;
    bool chat = false, json = false;
    const char *dump_qkv = NULL, *dump_file = NULL;
    int dump_layer = -1;
    float *dump_q = NULL;
    const us_option opts[] = {
        {"model", US_OPT_STRING, &model_path, "PATH", "Gemma 3 GGUF file (or Hugging Face directory)"},
        {"prompt", US_OPT_STRING, &prompt, "TEXT", "the prompt"},
        {"prompt-file", US_OPT_STRING, &prompt_file, "FILE", "read the prompt from FILE"},
        {"max-tokens", US_OPT_INT, &max_tokens, "N", "tokens to generate at most"},
        {"attention", US_OPT_STRING, &attention, "M", "global layers' prefill attention: dense or unisparse"},
        {"temperature", US_OPT_FLOAT, &temperature, "T", "sampling temperature; 0 = greedy"},
        {"top-k", US_OPT_INT, &top_k, "K", "sample among the K most likely tokens; 0 = all"},
        {"top-p", US_OPT_FLOAT, &top_p, "P", "nucleus sampling mass; 1 = off"},
        {"seed", US_OPT_INT64, &seed, "S", "sampling seed"},
        {"chat", US_OPT_FLAG, &chat, NULL, "wrap the prompt in Gemma 3's chat template (one user turn)"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"json", US_OPT_FLAG, &json, NULL, "print one JSON object (ids, text, speeds) instead of streaming"},
        {"dump-qkv", US_OPT_STRING, &dump_qkv, "LAYER:FILE",
         "write one global layer's post-RoPE q, k, v for the prompt to FILE (the attn --qkv format)"},
        {0}};
    int rc = us_options_parse(opts, argc, argv,
                              "unisparse generate --model PATH (--prompt TEXT | --prompt-file FILE) [options]",
                              "Generates text with Gemma 3 on the CPU: greedy by default, stops at eos or\n"
                              "<end_of_turn>; streams the text, or prints one JSON object with --json.",
                              NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!model_path) {
        fprintf(stderr, "unisparse generate: --model PATH is required\n");
        return 2;
    }
    if (!!prompt == !!prompt_file) {
        fprintf(stderr, "unisparse generate: give exactly one of --prompt TEXT and --prompt-file FILE\n");
        return 2;
    }
    if (max_tokens < 1 || max_tokens > 1 << 20) {
        fprintf(stderr, "unisparse generate: --max-tokens %d: must lie in [1, 1048576]\n", max_tokens);
        return 2;
    }
    if (temperature < 0.0f || !isfinite(temperature) || top_k < 0 || !(top_p > 0.0f && top_p <= 1.0f) ||
        threads < 0) {
        fprintf(stderr, "unisparse generate: need --temperature >= 0, --top-k >= 0, --top-p in (0, 1], "
                        "--threads >= 0\n");
        return 2;
    }
    us_gemma3_opts mo = us_gemma3_opts_default();
    int meth = us_method_parse(attention);
    if (meth != US_METHOD_DENSE && meth != US_METHOD_UNISPARSE) {
        fprintf(stderr, "unisparse generate: --attention %s: must be dense or unisparse\n", attention);
        return 2;
    }
    mo.method = (us_method)meth;
    mo.threads = threads;

    struct stat sb;
    if (stat(model_path, &sb) != 0) {
        fprintf(stderr, "unisparse generate: model %s: %s\n", model_path, strerror(errno));
        return 1;
    }
    size_t plen = 0;
    char *owned_prompt = NULL;
    if (prompt_file) {
        owned_prompt = read_text(prompt_file, &plen);
        if (!owned_prompt) {
            fprintf(stderr, "unisparse generate: prompt file %s: cannot read: %s\n", prompt_file, strerror(errno));
            return 1;
        }
        prompt = owned_prompt;
    }

    us_error err;
    us_gemma3_weights *w = NULL;
    us_tokenizer *tok = NULL;
    us_gemma3_model *m = NULL;
    char *rendered = NULL;
    int32_t *ids = NULL, *gen = NULL;
    float *logits = NULL;
    cand *cands = NULL;
    int status = 1;
    double t_start = us_wall_ms();
    if (us_gemma3_weights_load(model_path, &w, &err)) {
        fprintf(stderr, "unisparse generate: %s\n", err.msg);
        goto done;
    }
    if (us_gemma3_weights_gguf(w)) {
        if (us_gemma3_tokenizer_from_gguf(us_gemma3_weights_gguf(w), &tok, &err)) {
            fprintf(stderr, "unisparse generate: %s\n", err.msg);
            goto done;
        }
    } else {
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tokenizer.model", model_path);
        if (us_tokenizer_load(tp, &tok, &err)) {
            fprintf(stderr, "unisparse generate: %s\n", err.msg);
            goto done;
        }
    }
    const us_gemma3_config *c = &w->cfg;
    const char *text = prompt;
    if (chat) {
        us_chat_turn turn = {"user", prompt};
        if (us_gemma3_chat_render(&turn, 1, true, true, &rendered, &err)) {
            fprintf(stderr, "unisparse generate: %s\n", err.msg);
            goto done;
        }
        text = rendered;
    }
    size_t n_text = 0;
    if (us_tokenizer_encode(tok, text, strlen(text), NULL, 0, &n_text, &err)) {
        fprintf(stderr, "unisparse generate: encoding the prompt: %s\n", err.msg);
        goto done;
    }
    const size_t n_bos = chat ? 0 : 1;
    ids = malloc((n_text + 1) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "unisparse generate: no memory for %zu prompt tokens\n", n_text);
        goto done;
    }
    ids[0] = c->bos_id;
    size_t got = 0;
    if (us_tokenizer_encode(tok, text, strlen(text), ids + n_bos, n_text, &got, &err)) {
        fprintf(stderr, "unisparse generate: encoding the prompt: %s\n", err.msg);
        goto done;
    }
    const int64_t n_prompt = (int64_t)(got + n_bos), ctx = c->max_position_embeddings;
    if (n_prompt >= ctx) {
        fprintf(stderr, "unisparse generate: the prompt%s%s is %lld tokens; the model's context (%s) is %lld tokens\n",
                prompt_file ? " in " : "", prompt_file ? prompt_file : "", (long long)n_prompt, model_path,
                (long long)ctx);
        goto done;
    }
    if (n_prompt + max_tokens > ctx) max_tokens = (int)(ctx - n_prompt);
    mo.max_ctx = n_prompt + max_tokens;
    if (us_gemma3_model_create(w, &mo, &m, &err)) {
        fprintf(stderr, "unisparse generate: %s\n", err.msg);
        goto done;
    }
    const int V = c->vocab_size < MAX_SAMPLE_VOCAB ? c->vocab_size : MAX_SAMPLE_VOCAB;
    logits = malloc((size_t)c->vocab_size * sizeof *logits);
    gen = malloc((size_t)max_tokens * sizeof *gen);
    cands = temperature > 0.0f ? malloc((size_t)V * sizeof *cands) : NULL;
    if (!logits || !gen || (temperature > 0.0f && !cands)) {
        fprintf(stderr, "unisparse generate: no memory\n");
        goto done;
    }
    if (dump_qkv) {
        int rc_dump = setup_dump(dump_qkv, c, m, n_prompt, &dump_layer, &dump_file, &dump_q);
        if (rc_dump) {
            status = rc_dump;
            goto done;
        }
    }
    const int32_t eot = us_tokenizer_piece_to_id(tok, "<end_of_turn>");
    double load_ms = us_wall_ms() - t_start;

    /* prefill in chunks, with a progress bar on a terminal */
    const int n_chunks = (int)((n_prompt + PREFILL_CHUNK - 1) / PREFILL_CHUNK);
    us_progress bar;
    us_progress_start(&bar, "prefill", n_chunks);
    double t0 = us_wall_ms();
    for (int64_t p = 0; p < n_prompt; p += PREFILL_CHUNK) {
        const int64_t n = n_prompt - p < PREFILL_CHUNK ? n_prompt - p : PREFILL_CHUNK;
        if (us_gemma3_forward(m, ids + p, n, p + n == n_prompt ? 1 : 0, logits, &err)) {
            us_progress_end(&bar);
            fprintf(stderr, "unisparse generate: prefill: %s\n", err.msg);
            goto done;
        }
        char what[64];
        snprintf(what, sizeof what, "%lld / %lld tokens", (long long)(p + n), (long long)n_prompt);
        us_progress_step(&bar, what);
    }
    us_progress_end(&bar);
    const double prefill_ms = us_wall_ms() - t0;
    if (dump_q && write_dump(dump_file, c, m, dump_layer, dump_q, n_prompt) != 0) goto done;

    uint64_t rng = (uint64_t)seed;
    int n_gen = 0;
    const char *stop = "max_tokens";
    size_t printed = 0;
    double ttft_ms = 0.0, t_dec = us_wall_ms();
    for (;;) {
        const int32_t next = pick(logits, V, temperature, top_k, top_p, &rng, cands);
        if (n_gen == 0) ttft_ms = us_wall_ms() - t0, t_dec = us_wall_ms();
        if (next == c->eos_id || next == eot) {
            stop = next == c->eos_id ? "eos" : "end_of_turn";
            break;
        }
        gen[n_gen++] = next;
        if (!json) stream_text(tok, gen, (size_t)n_gen, &printed);
        if (n_gen == max_tokens) break;
        if (us_gemma3_forward(m, &next, 1, 1, logits, &err)) {
            fprintf(stderr, "\nunisparse generate: decode: %s\n", err.msg);
            goto done;
        }
    }
    const double decode_ms = us_wall_ms() - t_dec;
    /* decode steps = forward calls after the first token: n_gen - 1 (n_gen when it stopped on a stop token) */
    const int steps = strcmp(stop, "max_tokens") ? n_gen : n_gen - 1;
    const double prefill_tps = prefill_ms > 0 ? 1000.0 * (double)n_prompt / prefill_ms : 0.0;
    const double decode_tps = decode_ms > 0 && steps > 0 ? 1000.0 * steps / decode_ms : 0.0;
    char *out_text = NULL;
    size_t out_len = 0;
    if (us_tokenizer_decode(tok, gen, (size_t)n_gen, 0, &out_text, &out_len, &err)) {
        fprintf(stderr, "unisparse generate: decoding: %s\n", err.msg);
        goto done;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "model", model_path);
        cJSON_AddStringToObject(o, "attention", us_method_name(mo.method));
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)n_prompt);
        for (int i = 0; i < n_gen; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(gen[i]));
        cJSON_AddItemToObject(o, "ids", a);
        cJSON_AddStringToObject(o, "text", out_text);
        cJSON_AddStringToObject(o, "stop", stop);
        cJSON_AddNumberToObject(o, "load_ms", load_ms);
        cJSON_AddNumberToObject(o, "prefill_ms", prefill_ms);
        cJSON_AddNumberToObject(o, "prefill_tokens_per_s", prefill_tps);
        cJSON_AddNumberToObject(o, "decode_tokens_per_s", decode_tps);
        cJSON_AddNumberToObject(o, "ttft_ms", ttft_ms);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        if (out_len > printed) fwrite(out_text + printed, 1, out_len - printed, stdout);
        printf("\n");
        fprintf(stderr, "[%lld prompt tokens, prefill %.1f tok/s, first token %.0f ms, %d generated, decode %.2f tok/s, "
                        "stop: %s]\n",
                (long long)n_prompt, prefill_tps, ttft_ms, n_gen, decode_tps, stop);
    }
    free(out_text);
    status = 0;
done:
    free(cands), free(gen), free(logits), free(ids), free(rendered), free(owned_prompt), free(dump_q);
    us_gemma3_model_free(&m);
    us_tokenizer_free(&tok);
    us_gemma3_weights_free(&w);
    return status;
}
