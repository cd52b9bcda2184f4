/* summarizer.h: one document -> one summary with a Gemma 3 model, however long the document.
 *
 *   us_summarize_params p = us_summarize_params_default();   // context 8192, 256 summary tokens
 *   char *summary = NULL;  us_summary_stats st;
 *   if (us_summarize(model, llm, text, len, &p, NULL, &summary, &st, &err)) ...
 *
 * A document whose prompt fits p.context tokens (prompt + summary) is summarized in one call. A
 * longer one is cut into equal token chunks that fit, each chunk summarized ("part i of k"), and the
 * chunk summaries summarized together again, recursively until one call suffices (map-reduce). The
 * model's KV cache must hold p.context positions; it is reset before each call. */
#ifndef UNISPARSE_SUMMARIZER_H
#define UNISPARSE_SUMMARIZER_H

#include "generate.h"

typedef struct {
    int context;         /* tokens per model call, prompt and summary together (8192) */
    us_gen_params gen;   /* max_tokens = the summary length (256), sampling */
} us_summarize_params;

typedef struct {
    int64_t doc_tokens;     /* the document alone */
    int chunks;             /* first-level chunks (1 = it fit) */
    int calls;              /* model calls, the combining ones included */
    int summary_tokens;
    double prefill_ms, decode_ms;
    us_gemma3_attn_stats attn; /* global layers' prefill attention over all calls */
} us_summary_stats;

us_summarize_params us_summarize_params_default(void);

/* hooks (may be NULL) see every call's prefill and tokens. *summary: new string (free()). */
us_status us_summarize(us_gemma3_model *m, const us_llm *llm, const char *text, size_t len,
                       const us_summarize_params *p, const us_gen_hooks *hooks, char **summary,
                       us_summary_stats *stats, us_error *err);

#endif
