/* summarizer.c: single-call summaries, and map-reduce over token chunks for longer documents. */
#include "summarizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 6

static const char *const ASK_WHOLE = "Summarize the following document in a few sentences. Keep the main points, "
                                     "names and numbers.\n\n";
static const char *const ASK_PART = "Summarize the following excerpt (part %d of %d of a longer document) in a few "
                                    "sentences. Keep the main points, names and numbers.\n\n";
static const char *const ASK_COMBINE = "The following are summaries of consecutive parts of one document. Write one "
                                       "summary of the whole document in a few sentences.\n\n";

us_summarize_params us_summarize_params_default(void)
{
    us_summarize_params p;
    p.context = 8192;
    p.gen = us_gen_params_default();
    p.gen.max_tokens = 256;
    return p;
}

static void add_stats(us_summary_stats *st, const us_gen_result *r)
{
    st->calls++;
    st->prefill_ms += r->prefill_ms, st->decode_ms += r->decode_ms;
    st->attn.attn_ms += r->attn.attn_ms, st->attn.select_ms += r->attn.select_ms;
    st->attn.kept_pairs += r->attn.kept_pairs, st->attn.visible_pairs += r->attn.visible_pairs;
    st->attn.calls += r->attn.calls;
}

/* An instruction-tuned model gets "instruction + body" as one user turn; a base model, which
 * continues text rather than following it, gets "body + a cue" that a summary naturally follows. */
static const char *const BASE_CUE = "\n\nSummary of the text above, in a few sentences:";

/* instruction + body -> one generation from an empty cache. */
static us_status ask(us_gemma3_model *m, const us_llm *llm, const char *instruction, const char *body, size_t body_len,
                     const us_summarize_params *p, const us_gen_hooks *hooks, char **out, int *out_tokens,
                     us_summary_stats *st, us_error *err)
{
    const bool chat = llm->instruction_tuned;
    const char *head = chat ? instruction : "", *tail = chat ? "" : BASE_CUE;
    const size_t hl = strlen(head), tl = strlen(tail);
    char *prompt = malloc(hl + body_len + tl + 1);
    if (!prompt) return us_error_set(err, US_ERR_NOMEM, "no memory for the prompt");
    memcpy(prompt, head, hl);
    memcpy(prompt + hl, body, body_len);
    memcpy(prompt + hl + body_len, tail, tl + 1);
    int32_t *ids = NULL;
    int64_t n = 0;
    us_gen_result r = {0};
    us_status s = us_llm_encode(llm, prompt, chat ? US_PROMPT_CHAT : US_PROMPT_BOS, &ids, &n, err);
    free(prompt);
    us_gemma3_reset(m);
    if (!s) s = us_generate(m, llm, ids, n, &p->gen, hooks, &r, err);
    if (!s) s = us_llm_decode(llm, r.ids, r.n, out, err);
    if (!s) { /* trim the blank lines and indentation a model opens or closes with */
        char *t = *out, *b = t, *e = t + strlen(t);
        while (*b && strchr(" \t\r\n", *b)) b++;
        while (e > b && strchr(" \t\r\n", e[-1])) e--;
        memmove(t, b, (size_t)(e - b));
        t[e - b] = '\0';
    }
    if (!s) {
        add_stats(st, &r);
        *out_tokens = r.n;
    }
    us_gen_result_free(&r);
    free(ids);
    return s;
}

/* Tokens the instruction and the chat template add around a body (measured, plus a margin for
 * merges at the seam). */
static int64_t overhead_tokens(const us_llm *llm, const char *instruction, us_error *err)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    char ask_text[512];
    snprintf(ask_text, sizeof ask_text, instruction, 99, 99);
    if (us_llm_encode(llm, ask_text, US_PROMPT_CHAT, &ids, &n, err)) return -1;
    free(ids);
    return n + 8;
}

static us_status summarize_level(us_gemma3_model *m, const us_llm *llm, const char *text, size_t len,
                                 const char *whole_instruction, const us_summarize_params *p,
                                 const us_gen_hooks *hooks, int depth, char **summary, int *summary_tokens,
                                 us_summary_stats *st, us_error *err)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    us_status s = us_llm_encode(llm, text, US_PROMPT_RAW, &ids, &n, err);
    if (s) return s;
    if (depth == 0) st->doc_tokens = n;
    const int64_t over = overhead_tokens(llm, ASK_PART, err);
    if (over < 0) {
        free(ids);
        return US_ERR_INVALID;
    }
    const int64_t budget = p->context - p->gen.max_tokens - over; /* body tokens per call */
    if (n <= budget) {
        free(ids);
        if (depth == 0) st->chunks = 1;
        return ask(m, llm, whole_instruction, text, len, p, hooks, summary, summary_tokens, st, err);
    }
    if (depth >= MAX_DEPTH) {
        free(ids);
        return us_error_set(err, US_ERR_INVALID, "the summaries still exceed the context after %d rounds", depth);
    }
    const int k = (int)((n + budget - 1) / budget);
    if (depth == 0) st->chunks = k;
    /* joined chunk summaries: "Part i: ...\n\n" */
    size_t cap = 4096, used = 0;
    char *joined = malloc(cap);
    if (!joined) s = us_error_set(err, US_ERR_NOMEM, "no memory");
    for (int i = 0; i < k && !s; i++) {
        const int64_t a = n * i / k, b = n * (i + 1) / k;
        char *piece = NULL, *part = NULL, instr[512];
        int pt = 0;
        s = us_llm_decode(llm, ids + a, b - a, &piece, err);
        snprintf(instr, sizeof instr, ASK_PART, i + 1, k);
        if (!s) s = ask(m, llm, instr, piece, strlen(piece), p, hooks, &part, &pt, st, err);
        if (!s) {
            const size_t need = used + strlen(part) + 32;
            if (need > cap) {
                char *nj = realloc(joined, cap = need * 2);
                if (!nj) s = us_error_set(err, US_ERR_NOMEM, "no memory");
                else joined = nj;
            }
            if (!s) used += (size_t)sprintf(joined + used, "Part %d: %s\n\n", i + 1, part);
        }
        free(piece), free(part);
    }
    free(ids);
    if (!s) s = summarize_level(m, llm, joined, used, ASK_COMBINE, p, hooks, depth + 1, summary, summary_tokens, st, err);
    free(joined);
    return s;
}

us_status us_summarize(us_gemma3_model *m, const us_llm *llm, const char *text, size_t len,
                       const us_summarize_params *pp, const us_gen_hooks *hooks, char **summary,
                       us_summary_stats *stats, us_error *err)
{
    *summary = NULL;
    memset(stats, 0, sizeof *stats);
    const us_summarize_params p = pp ? *pp : us_summarize_params_default();
    if (p.gen.max_tokens < 1 || p.context < 4 * p.gen.max_tokens || p.context > us_gemma3_max_ctx(m))
        return us_error_set(err, US_ERR_INVALID,
                            "context %d must be at least 4x the summary length (%d tokens) and at most the model's "
                            "KV cache (%lld)",
                            p.context, p.gen.max_tokens, (long long)us_gemma3_max_ctx(m));
    return summarize_level(m, llm, text, len, ASK_WHOLE, &p, hooks, 0, summary, &stats->summary_tokens, stats, err);
}
