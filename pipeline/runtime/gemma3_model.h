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
 * at creation: the forward pass allocates nothing of its own (us_attention allocates internally).
 *
 * Images (us_gemma3_forward_embeds): each run of image_token_id in the ids is one image, whose
 * positions take the caller's embedding rows (unscaled) and attend to each other bidirectionally, in
 * sliding and global layers alike (a sliding layer's image query sees its whole image ahead and the
 * window behind); everything else stays causal. The model remembers the images' spans of the cache,
 * and never cuts an image between two internal chunks. */
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
    int dense_tail;    /* sparse methods: the prompt's last dense_tail queries attend to every visible key in
                          the global layers (256): the positions the answer reads most directly, 256 x N
                          pairs, which kept 32K greedy output unchanged (bench/RESULTS.md) */
} us_gemma3_opts;

typedef struct us_gemma3_model us_gemma3_model;

us_gemma3_opts us_gemma3_opts_default(void);

/* w must outlive the model. */
us_status us_gemma3_model_create(const us_gemma3_weights *w, const us_gemma3_opts *o, us_gemma3_model **out,
                                 us_error *err);
void us_gemma3_model_free(us_gemma3_model **m);

/* Empties the KV cache. */
void us_gemma3_reset(us_gemma3_model *m);
/* The prompt now being prefilled ends at position end (exclusive): its last opts.dense_tail queries
 * attend densely in the global layers. Generation calls it before each prefill; without a call no
 * query does. us_gemma3_reset forgets it. */
void us_gemma3_set_prompt_end(us_gemma3_model *m, int64_t end);

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
    double matmul_ms;     /* every weight product of every forward call (not only global layers) */
    double matmul_flop;   /* their 2 T N K */
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

/* us_gemma3_forward with images: the positions t where ids[t] == cfg.image_token_id (which may lie
 * outside the vocabulary) take, in order, the rows of image_embeds (n_image_tokens, hidden_size) as they
 * are (transformers replaces the scaled text embedding by the projector's output); each maximal run of
 * them is one image, attended bidirectionally inside (us_mask's causal + spans rule). n_image_tokens
 * must equal the number of such positions (0 with image_embeds NULL: plain text). An image must come
 * whole in one call (an error names the call that continues one) and fit in opts.max_batch; the call is
 * cut into chunks at image boundaries. Errors leave the cache as us_gemma3_forward's do. */
us_status us_gemma3_forward_embeds(us_gemma3_model *m, const int32_t *ids, int64_t T, const float *image_embeds,
                                   int64_t n_image_tokens, int64_t n_logits, float *logits, us_error *err);

/* How many of ids (T) the next forward call should take when a caller cuts a prompt into calls of about
 * `want` tokens: want (or T), backed off to the start of an image that the cut would split, or the whole
 * first image when one starts at ids[0] and is longer than want. Images are runs of c->image_token_id. */
int64_t us_gemma3_chunk_len(const us_gemma3_config *c, const int32_t *ids, int64_t T, int64_t want);

/* The images' spans of the cache, [start, end) positions, sorted (*n of them); valid until the next
 * forward call or reset. E.g. for the "spans" mask of an attention-input file. */
const us_span *us_gemma3_image_spans(const us_gemma3_model *m, int *n);

/* Records the post-RoPE queries of `layer` into q, laid out (H, cap, d) by position, during the
 * forward calls that follow (positions >= cap are not recorded); layer -1 stops recording. */
us_status us_gemma3_capture_queries(us_gemma3_model *m, int layer, float *q, int64_t cap, us_error *err);

/* Views [K, n_past, d] (f32, strided inside the cache) of the cached post-RoPE keys and the values
 * of `layer`; valid until the next forward call or reset. */
us_status us_gemma3_cached_kv(const us_gemma3_model *m, int layer, us_tensor *k, us_tensor *v, us_error *err);

#endif
