/* cmd_generate.c: `unisparse generate`: text generation with the Gemma 3 runtime on the CPU.
 *
 * The model is a GGUF file (or a Hugging Face directory with tokenizer.model); the prompt is encoded
 * with BOS (or rendered with the chat template), prefilled in chunks (a progress bar on a terminal),
 * then decoded one token at a time: greedy by default, or sampled with temperature / top-k / top-p.
 * Generation stops at eos, <end_of_turn> or --max-tokens. Text streams to stdout as it is decoded;
 * --json prints one object instead. Exit status: 0 success, 1 bad input or failure, 2 bad usage. */
#include "chat_template.h"
#include "commands.h"
#include "document.h"
#include "gemma3_gguf.h"
#include "gemma3_model.h"
#include "generate.h"
#include "image_load.h"
#include "visual_prompt.h"
#include "llm.h"
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

/* --image a.png,b.jpg: loads and encodes each image, places one <start_of_image> per image before
 * the prompt when the prompt has none, and encodes the whole. */
static us_status encode_with_images(const us_llm *llm, const char *list, const char *prompt, bool chat, int threads,
                                    us_visual_prompt **vp, int32_t **ids, int64_t *n, us_error *err)
{
    us_status s = us_visual_prompt_create(llm, threads, vp, err);
    char *names = s ? NULL : strdup(list), *text = NULL;
    if (!s && !names) s = us_error_set(err, US_ERR_NOMEM, "no memory");
    int count = 0;
    for (char *save = NULL, *f = names ? strtok_r(names, ",", &save) : NULL; f && !s; f = strtok_r(NULL, ",", &save)) {
        us_image img = {0};
        s = us_image_load(f, &img, err);
        if (!s) s = us_visual_prompt_add_image(*vp, img.rgb, img.width, img.height, err);
        if (s && !strstr(err->msg, f)) {
            us_error e2 = *err;
            us_error_set(err, s, "%s: %s", f, e2.msg);
        }
        us_image_free(&img);
        count++;
    }
    free(names);
    if (s) return s;
    const char *body = prompt;
    if (!strstr(prompt, "<start_of_image>")) {
        const size_t pl = strlen(prompt);
        if (!(text = malloc(pl + (size_t)count * 16 + 1))) return us_error_set(err, US_ERR_NOMEM, "no memory");
        text[0] = '\0';
        for (int i = 0; i < count; i++) strcat(text, "<start_of_image>");
        strcat(text, prompt);
        body = text;
    }
    s = us_visual_prompt_encode(*vp, body, chat ? US_PROMPT_CHAT : US_PROMPT_BOS, ids, n, err);
    free(text);
    return s;
}

typedef struct {
    const us_llm *llm;
    us_progress *bar;
    size_t printed;
    bool stream;
} gen_ui;

static void ui_prefill(void *user, int64_t done, int64_t total)
{
    gen_ui *u = user;
    char what[64];
    snprintf(what, sizeof what, "%lld / %lld tokens", (long long)done, (long long)total);
    us_progress_step(u->bar, what);
    if (done == total) us_progress_end(u->bar);
}

static void ui_token(void *user, const int32_t *gen, int n)
{
    gen_ui *u = user;
    if (u->stream) stream_text(u->llm->tok, gen, (size_t)n, &u->printed);
}

int cmd_generate(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *attention = "dense";
    us_gen_params gp = us_gen_params_default();
    int threads = 0, block = 0;
    float tau = 0.0f;
    int64_t seed = 0;
    bool chat = false, json = false;
    const char *dump_qkv = NULL, *dump_file = NULL, *images = NULL;
    int dump_layer = -1;
    float *dump_q = NULL;
    const us_option opts[] = {
        {"model", US_OPT_STRING, &model_path, "PATH", "Gemma 3 GGUF file (or Hugging Face directory)"},
        {"prompt", US_OPT_STRING, &prompt, "TEXT", "the prompt"},
        {"prompt-file", US_OPT_STRING, &prompt_file, "FILE", "read the prompt from FILE"},
        {"max-tokens", US_OPT_INT, &gp.max_tokens, "N", "tokens to generate at most"},
        {"attention", US_OPT_STRING, &attention, "M",
         "global layers' prefill attention: dense, unisparse, xattention, flexprefill, minference"},
        {"tau", US_OPT_FLOAT, &tau, "T", "sparse methods' kept attention mass (0 = each method's default)"},
        {"block", US_OPT_INT, &block, "S", "sparse methods' selection block, 64 or 128 (0 = the default, 128)"},
        {"temperature", US_OPT_FLOAT, &gp.temperature, "T", "sampling temperature; 0 = greedy"},
        {"top-k", US_OPT_INT, &gp.top_k, "K", "sample among the K most likely tokens; 0 = all"},
        {"top-p", US_OPT_FLOAT, &gp.top_p, "P", "nucleus sampling mass; 1 = off"},
        {"seed", US_OPT_INT64, &seed, "S", "sampling seed"},
        {"chat", US_OPT_FLAG, &chat, NULL, "wrap the prompt in Gemma 3's chat template (one user turn)"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"json", US_OPT_FLAG, &json, NULL, "print one JSON object (ids, text, speeds) instead of streaming"},
        {"image", US_OPT_STRING, &images, "FILE[,FILE...]",
         "images shown to a vision checkpoint, at each <start_of_image> of the prompt (else before it)"},
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
    if (gp.max_tokens < 1 || gp.max_tokens > 1 << 20) {
        fprintf(stderr, "unisparse generate: --max-tokens %d: must lie in [1, 1048576]\n", gp.max_tokens);
        return 2;
    }
    if (gp.temperature < 0.0f || !isfinite(gp.temperature) || gp.top_k < 0 || !(gp.top_p > 0.0f && gp.top_p <= 1.0f) ||
        threads < 0) {
        fprintf(stderr, "unisparse generate: need --temperature >= 0, --top-k >= 0, --top-p in (0, 1], "
                        "--threads >= 0\n");
        return 2;
    }
    gp.seed = (uint64_t)seed;
    us_gemma3_opts mo = us_gemma3_opts_default();
    int meth = us_method_parse(attention);
    if (meth < 0 || meth == US_METHOD_ASHAPE) {
        fprintf(stderr, "unisparse generate: --attention %s: must be dense, unisparse, xattention, flexprefill or "
                        "minference\n",
                attention);
        return 2;
    }
    mo.method = (us_method)meth;
    mo.threads = threads;
    if (tau != 0.0f) {
        if (!(tau > 0.0f && tau <= 1.0f)) {
            fprintf(stderr, "unisparse generate: --tau %g: must lie in (0, 1]\n", (double)tau);
            return 2;
        }
        mo.params.tau = mo.params.xattn_tau = mo.params.flex_gamma = tau;
    }
    if (block != 0) {
        if (block != 64 && block != 128) {
            fprintf(stderr, "unisparse generate: --block %d: must be 64 or 128\n", block);
            return 2;
        }
        mo.params.block = block;
    }

    size_t plen = 0;
    char *owned_prompt = NULL;
    if (prompt_file) {
        us_error rerr;
        if (us_document_read(prompt_file, (size_t)1 << 30, &owned_prompt, &plen, &rerr)) {
            fprintf(stderr, "unisparse generate: prompt file %s\n", rerr.msg);
            return 1;
        }
        prompt = owned_prompt;
    }

    us_error err;
    us_llm *llm = NULL;
    us_gemma3_model *m = NULL;
    int32_t *ids = NULL;
    int64_t n_prompt = 0;
    us_gen_result res = {0};
    us_visual_prompt *vp = NULL;
    char *out_text = NULL;
    int status = 1;
    double t_start = us_wall_ms();
    if (us_llm_load(model_path, &llm, &err)) {
        fprintf(stderr, "unisparse generate: %s\n", err.msg);
        goto done;
    }
    const us_gemma3_config *c = &llm->w->cfg;
    if (images) {
        if (encode_with_images(llm, images, prompt, chat, threads, &vp, &ids, &n_prompt, &err)) {
            fprintf(stderr, "unisparse generate: %s\n", err.msg);
            goto done;
        }
    } else if (us_llm_encode(llm, prompt, chat ? US_PROMPT_CHAT : US_PROMPT_BOS, &ids, &n_prompt, &err)) {
        fprintf(stderr, "unisparse generate: encoding the prompt: %s\n", err.msg);
        goto done;
    }
    const int64_t ctx = c->max_position_embeddings;
    if (n_prompt >= ctx) {
        fprintf(stderr, "unisparse generate: the prompt%s%s is %lld tokens; the model's context (%s) is %lld tokens\n",
                prompt_file ? " in " : "", prompt_file ? prompt_file : "", (long long)n_prompt, model_path,
                (long long)ctx);
        goto done;
    }
    if (n_prompt + gp.max_tokens > ctx) gp.max_tokens = (int)(ctx - n_prompt);
    mo.max_ctx = n_prompt + gp.max_tokens;
    if (us_gemma3_model_create(llm->w, &mo, &m, &err)) {
        fprintf(stderr, "unisparse generate: %s\n", err.msg);
        goto done;
    }
    if (dump_qkv) {
        int rc_dump = setup_dump(dump_qkv, c, m, n_prompt, &dump_layer, &dump_file, &dump_q);
        if (rc_dump) {
            status = rc_dump;
            goto done;
        }
    }
    const double load_ms = us_wall_ms() - t_start;

    us_progress bar;
    us_progress_start(&bar, "prefill", (int)((n_prompt + gp.prefill_chunk - 1) / gp.prefill_chunk));
    gen_ui ui = {llm, &bar, 0, !json};
    us_gen_hooks hooks = {&ui, ui_prefill, NULL, ui_token};
    int64_t n_rows = 0;
    const float *rows = vp ? us_visual_prompt_rows(vp, &n_rows) : NULL;
    if (us_generate_embeds(m, llm, ids, n_prompt, rows, n_rows, &gp, &hooks, &res, &err)) {
        us_progress_end(&bar);
        fprintf(stderr, "\nunisparse generate: %s\n", err.msg);
        goto done;
    }
    if (dump_q && write_dump(dump_file, c, m, dump_layer, dump_q, n_prompt) != 0) goto done;
    if (us_llm_decode(llm, res.ids, res.n, &out_text, &err)) {
        fprintf(stderr, "unisparse generate: decoding: %s\n", err.msg);
        goto done;
    }
    const size_t out_len = strlen(out_text);
    const double density = res.attn.visible_pairs > 0 ? res.attn.kept_pairs / res.attn.visible_pairs : 1.0;
    if (json) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "model", model_path);
        cJSON_AddStringToObject(o, "attention", us_method_name(mo.method));
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)n_prompt);
        for (int i = 0; i < res.n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(res.ids[i]));
        cJSON_AddItemToObject(o, "ids", a);
        cJSON_AddStringToObject(o, "text", out_text);
        cJSON_AddStringToObject(o, "stop", res.stop);
        cJSON_AddNumberToObject(o, "load_ms", load_ms);
        cJSON_AddNumberToObject(o, "prefill_ms", res.prefill_ms);
        cJSON_AddNumberToObject(o, "prefill_tokens_per_s", us_gen_prefill_tps(&res));
        cJSON_AddNumberToObject(o, "decode_tokens_per_s", us_gen_decode_tps(&res));
        cJSON_AddNumberToObject(o, "ttft_ms", res.ttft_ms);
        cJSON_AddNumberToObject(o, "attention_ms", res.attn.attn_ms);
        cJSON_AddNumberToObject(o, "selection_ms", res.attn.select_ms);
        cJSON_AddNumberToObject(o, "attention_density", density);
        cJSON_AddNumberToObject(o, "prefill_matmul_ms", res.attn.matmul_ms);
        cJSON_AddNumberToObject(o, "prefill_matmul_gflops",
                                res.attn.matmul_ms > 0 ? res.attn.matmul_flop / (1e6 * res.attn.matmul_ms) : 0.0);
        char *js = cJSON_PrintUnformatted(o);
        printf("%s\n", js ? js : "{}");
        free(js);
        cJSON_Delete(o);
    } else {
        if (out_len > ui.printed) fwrite(out_text + ui.printed, 1, out_len - ui.printed, stdout);
        printf("\n");
        fprintf(stderr,
                "[%lld prompt tokens, prefill %.1f tok/s, first token %.0f ms, %d generated, decode %.2f tok/s, "
                "stop: %s; global attention %.0f ms at density %.3f]\n",
                (long long)n_prompt, us_gen_prefill_tps(&res), res.ttft_ms, res.n, us_gen_decode_tps(&res), res.stop,
                res.attn.attn_ms, density);
    }
    status = 0;
done:
    free(out_text), free(ids), free(owned_prompt), free(dump_q);
    us_gen_result_free(&res);
    us_gemma3_model_free(&m);
    us_visual_prompt_free(&vp);
    us_llm_free(&llm);
    return status;
}
