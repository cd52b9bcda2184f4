/* generate.h: prompt -> continuation on a Gemma 3 model: chunked prefill, then one token at a time
 * until eos, <end_of_turn> or max_tokens.
 *
 *   us_gen_params p = us_gen_params_default();  p.max_tokens = 64;
 *   us_gen_result r;
 *   if (us_generate(model, llm, ids, n, &p, NULL, &r, &err)) ...
 *   char *text;  us_llm_decode(llm, r.ids, r.n, &text, &err);
 *   us_gen_result_free(&r);
 *
 * The prompt goes after whatever the model's cache already holds (us_gemma3_n_past): a shared prefix
 * prefilled once (us_generate with max_tokens 0, or us_gemma3_forward) serves several prompts when
 * the caller truncates the cache back to it between them (us_gemma3_truncate). */
#ifndef UNISPARSE_GENERATE_H
#define UNISPARSE_GENERATE_H

#include "gemma3_model.h"
#include "llm.h"

typedef struct {
    int max_tokens;     /* tokens to generate at most (128); 0 = prefill only */
    float temperature;  /* 0 = greedy (default) */
    int top_k;          /* 0 = all */
    float top_p;        /* 1 = off */
    uint64_t seed;
    int prefill_chunk;  /* tokens per prefill call, the progress granularity (256) */
} us_gen_params;

us_gen_params us_gen_params_default(void);

typedef struct {
    void *user;
    /* after each prefill chunk: tokens done of total */
    void (*on_prefill)(void *user, int64_t done, int64_t total);
    /* before each pick: the next-token logits (vocab) at generated position `step` (0 = after the
     * prompt); eval reads the distributions here */
    void (*on_logits)(void *user, int step, const float *logits);
    /* after each generated token: all generated so far (a stop token is not included) */
    void (*on_token)(void *user, const int32_t *gen, int n);
} us_gen_hooks;

typedef struct {
    int32_t *ids;          /* generated tokens, owned: us_gen_result_free */
    int n;
    const char *stop;      /* "eos", "end_of_turn", "max_tokens" or "context" (the cache is full) */
    int64_t prompt_tokens; /* this call's prompt */
    double prefill_ms, ttft_ms, decode_ms; /* ttft: from the start of prefill to the first token */
    int decode_steps;      /* forward calls after prefill */
    us_gemma3_attn_stats attn; /* global layers' prefill attention during this call */
} us_gen_result;

/* Prefills prompt (n tokens) after the cached ones and generates. A prompt that does not fit the
 * cache is an error naming both sizes; generation that fills it stops with stop = "context". On
 * error *out holds nothing to free. */
us_status us_generate(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n,
                      const us_gen_params *p, const us_gen_hooks *hooks, us_gen_result *out, us_error *err);

/* The same with images: the prompt's runs of image_token_id take, in order, the rows of image_embeds
 * (n_image_tokens, hidden), as us_gemma3_forward_embeds; prefill never cuts an image. */
us_status us_generate_embeds(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n,
                             const float *image_embeds, int64_t n_image_tokens, const us_gen_params *p,
                             const us_gen_hooks *hooks, us_gen_result *out, us_error *err);
void us_gen_result_free(us_gen_result *r);

/* Prefill throughput in tokens/s and decode throughput in tokens/s of a result (0 when unmeasured). */
double us_gen_prefill_tps(const us_gen_result *r);
double us_gen_decode_tps(const us_gen_result *r);

#endif
