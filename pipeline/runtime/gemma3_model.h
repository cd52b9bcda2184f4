/* gemma3_model.h: the Gemma 3 text decoder on the CPU, with a KV cache.
 *
 *   us_gemma3_weights *w = NULL;  us_gemma3_model *m = NULL;  us_error err;
 *   us_gemma3_opts o = us_gemma3_opts_default();
 *   if (us_gemma3_weights_load(dir, &w, &err) || us_gemma3_model_create(w, &o, &m, &err)) ...
 *   us_gemma3_forward(m, prompt, n, 1, logits, &err);   // prefill, logits of the last token
 *   us_gemma3_forward(m, &next, 1, 1, logits, &err);    // one decode step
 *
 * Each forward call appends its T tokens at positions n_past .. n_past+T-1 (chunked prefill against
 * the cache; calls longer than opts.max_batch are cut into chunks internally). Global layers' prefill
 * attention goes through us_attention (opts.method: dense or UniSparse); sliding layers, and single
 * decode tokens, use an exact masked loop over the visible keys. All scratch and the cache are sized
 * at creation: the forward pass allocates nothing of its own (us_attention allocates internally). */
#ifndef UNISPARSE_GEMMA3_MODEL_H
#define UNISPARSE_GEMMA3_MODEL_H

#include "gemma3_weights.h"
#include "unisparse/attention.h"

#include <stdint.h>

typedef struct {
    int64_t max_ctx;   /* KV cache positions; 0 = min(max_position_embeddings, 8192) */
    int max_batch;     /* tokens per internal chunk (scratch size); 0 = 512 */
    int threads;       /* 0 = OpenMP's default */
    us_method method;  /* global layers' prefill attention: US_METHOD_DENSE (default) or UNISPARSE ... */
    us_unisparse_params params;
} us_gemma3_opts;

typedef struct us_gemma3_model us_gemma3_model;

us_gemma3_opts us_gemma3_opts_default(void);

/* w must outlive the model. */
us_status us_gemma3_model_create(const us_gemma3_weights *w, const us_gemma3_opts *o, us_gemma3_model **out,
                                 us_error *err);
void us_gemma3_model_free(us_gemma3_model **m);

/* Empties the KV cache. */
void us_gemma3_reset(us_gemma3_model *m);
/* Keeps the first n_past cached positions (a shared prefix, e.g. a video before each question) and
 * drops the rest; n_past must not exceed us_gemma3_n_past. */
us_status us_gemma3_truncate(us_gemma3_model *m, int64_t n_past, us_error *err);

/* The global layers' prefill attention (selection + kernel) since the last clear: what UniSparse
 * changes. Single-token decode steps and sliding layers are not counted. */
typedef struct {
    double attn_ms;       /* wall time of selection + attention */
    double select_ms;     /* of which the selector */
    double kept_pairs;    /* (query, key) pairs computed */
    double visible_pairs; /* (query, key) pairs the causal mask allows; density = kept / visible */
    int64_t calls;        /* layer-chunk calls */
} us_gemma3_attn_stats;
us_gemma3_attn_stats us_gemma3_attn_stats_get(const us_gemma3_model *m);
void us_gemma3_attn_stats_clear(us_gemma3_model *m);
/* Tokens in the KV cache, and the positions it holds at most. */
int64_t us_gemma3_n_past(const us_gemma3_model *m);
int64_t us_gemma3_max_ctx(const us_gemma3_model *m);

/* Runs ids (T) at positions n_past .. n_past+T-1 and writes the logits of the last n_logits of them
 * to logits (n_logits, vocab_size) (n_logits in [0, T]). On error the cache is left as before the
 * call's failing chunk. */
us_status us_gemma3_forward(us_gemma3_model *m, const int32_t *ids, int64_t T, int64_t n_logits, float *logits,
                            us_error *err);

/* Records the post-RoPE queries of `layer` into q, laid out (H, cap, d) by position, during the
 * forward calls that follow (positions >= cap are not recorded); layer -1 stops recording. */
us_status us_gemma3_capture_queries(us_gemma3_model *m, int layer, float *q, int64_t cap, us_error *err);

/* Views [K, n_past, d] (f32, strided inside the cache) of the cached post-RoPE keys and the values
 * of `layer`; valid until the next forward call or reset. */
us_status us_gemma3_cached_kv(const us_gemma3_model *m, int layer, us_tensor *k, us_tensor *v, us_error *err);

#endif
