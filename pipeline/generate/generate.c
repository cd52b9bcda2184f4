/* generate.c: the prefill + decode loop shared by the generate, vqa, summarize and eval commands. */
#include "generate.h"

#include "sampler.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

us_gen_params us_gen_params_default(void)
{
    us_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 128;
    p.top_p = 1.0f;
    p.prefill_chunk = 256;
    return p;
}

void us_gen_result_free(us_gen_result *r)
{
    if (!r) return;
    free(r->ids);
    r->ids = NULL;
    r->n = 0;
}

double us_gen_prefill_tps(const us_gen_result *r)
{
    return r->prefill_ms > 0.0 ? 1e3 * (double)r->prompt_tokens / r->prefill_ms : 0.0;
}

double us_gen_decode_tps(const us_gen_result *r)
{
    return r->decode_ms > 0.0 && r->decode_steps > 0 ? 1e3 * r->decode_steps / r->decode_ms : 0.0;
}

static double now_ms(void) { return 1e3 * omp_get_wtime(); }

us_status us_generate(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n,
                      const us_gen_params *p, const us_gen_hooks *hooks, us_gen_result *out, us_error *err)
{
    return us_generate_embeds(m, llm, prompt, n, NULL, 0, p, hooks, out, err);
}

us_status us_generate_embeds(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n,
                             const float *image_embeds, int64_t n_image_tokens, const us_gen_params *pp,
                             const us_gen_hooks *hooks, us_gen_result *out, us_error *err)
{
    memset(out, 0, sizeof *out);
    const us_gen_params p = pp ? *pp : us_gen_params_default();
    const us_gen_hooks h = hooks ? *hooks : (us_gen_hooks){0};
    const us_gemma3_config *c = &llm->w->cfg;
    if (n < 1 || !prompt) return us_error_set(err, US_ERR_INVALID, "the prompt is empty");
    if (p.max_tokens < 0 || p.prefill_chunk < 1)
        return us_error_set(err, US_ERR_INVALID, "max_tokens %d must be >= 0 and prefill_chunk %d >= 1", p.max_tokens,
                            p.prefill_chunk);
    const int64_t past = us_gemma3_n_past(m), room = us_gemma3_max_ctx(m) - past;
    if (n + (p.max_tokens > 0 ? 1 : 0) > room)
        return us_error_set(err, US_ERR_INVALID,
                            "the prompt is %lld tokens%s; the context holds %lld more (%lld of %lld positions in use)",
                            (long long)n, p.max_tokens > 0 ? " plus one to generate" : "", (long long)room,
                            (long long)past, (long long)us_gemma3_max_ctx(m));
    us_sampler *smp = NULL;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    int32_t *gen = malloc((size_t)(p.max_tokens > 0 ? p.max_tokens : 1) * sizeof *gen);
    us_status s = !logits || !gen ? us_error_set(err, US_ERR_NOMEM, "no memory for the logits") : US_OK;
    /* only ids the tokenizer can write out are candidates (the embedding table may be padded) */
    const int32_t tv = us_tokenizer_vocab_size(llm->tok), cand = tv < c->vocab_size ? tv : c->vocab_size;
    if (!s) s = us_sampler_create(cand, p.temperature, p.top_k, p.top_p, p.seed, &smp, err);
    if (s) goto fail;

    const us_gemma3_attn_stats a0 = us_gemma3_attn_stats_get(m);
    us_gemma3_set_prompt_end(m, us_gemma3_n_past(m) + n);
    out->prompt_tokens = n;
    const double t0 = now_ms();
    int64_t rows = 0; /* image rows consumed */
    for (int64_t i = 0, k; i < n; i += k) {
        k = us_gemma3_chunk_len(c, prompt + i, n - i, p.prefill_chunk);
        int64_t img = 0;
        for (int64_t t = i; t < i + k; t++) img += prompt[t] == c->image_token_id;
        if (rows + img > n_image_tokens) {
            s = us_error_set(err, US_ERR_INVALID, "the prompt has more image tokens than the %lld image rows given",
                             (long long)n_image_tokens);
            goto fail;
        }
        const int want = i + k == n && p.max_tokens > 0;
        s = us_gemma3_forward_embeds(m, prompt + i, k, img ? image_embeds + rows * c->hidden_size : NULL, img, want,
                                     logits, err);
        if (s) goto fail;
        rows += img;
        if (h.on_prefill) h.on_prefill(h.user, i + k, n);
    }
    if (rows != n_image_tokens) {
        s = us_error_set(err, US_ERR_INVALID, "%lld image rows given for %lld image tokens in the prompt",
                         (long long)n_image_tokens, (long long)rows);
        goto fail;
    }
    out->prefill_ms = now_ms() - t0;
    us_gemma3_attn_stats a1 = us_gemma3_attn_stats_get(m);
    out->attn = (us_gemma3_attn_stats){a1.attn_ms - a0.attn_ms, a1.select_ms - a0.select_ms,
                                       a1.kept_pairs - a0.kept_pairs, a1.visible_pairs - a0.visible_pairs,
                                       a1.calls - a0.calls, a1.matmul_ms - a0.matmul_ms,
                                       a1.matmul_flop - a0.matmul_flop};

    out->stop = "max_tokens";
    double t_dec = now_ms();
    int ng = 0;
    while (ng < p.max_tokens) {
        if (h.on_logits) h.on_logits(h.user, ng, logits);
        const int32_t next = us_sampler_pick(smp, logits);
        if (ng == 0) out->ttft_ms = now_ms() - t0, t_dec = now_ms();
        if (next == llm->eos_id || next == llm->eot_id) {
            out->stop = next == llm->eos_id ? "eos" : "end_of_turn";
            break;
        }
        gen[ng++] = next;
        if (h.on_token) h.on_token(h.user, gen, ng);
        if (ng == p.max_tokens) break;
        if (us_gemma3_n_past(m) >= us_gemma3_max_ctx(m)) {
            out->stop = "context";
            break;
        }
        s = us_gemma3_forward(m, &next, 1, 1, logits, err);
        if (s) goto fail;
        out->decode_steps++;
    }
    out->decode_ms = ng > 0 ? now_ms() - t_dec : 0.0;
    out->ids = gen;
    out->n = ng;
    us_sampler_free(&smp);
    free(logits);
    return US_OK;
fail:
    us_sampler_free(&smp);
    free(logits), free(gen);
    memset(out, 0, sizeof *out);
    return s;
}
