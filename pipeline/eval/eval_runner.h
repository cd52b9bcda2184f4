/* eval_runner.h: one prompt through one attention method: the greedy answer, its timings and
 * realised density, and its fidelity to a reference run (dense attention's). A prompt may show images
 * (video frames): their soft tokens take the given rows of the vision tower's output, in order, as
 * us_generate_embeds takes them; a text prompt gives none (NULL, 0).
 *
 *   us_eval_run_params p = {.max_tokens = 24};
 *   us_gemma3_opts o = us_gemma3_opts_default();  o.method = US_METHOD_DENSE;
 *   us_eval_size_model(&o, n, &p);                 // cache and chunk sized for this prompt
 *   us_eval_reference ref = {0};  us_eval_answer dense, sparse;
 *   us_gemma3_model_create(w, &o, &m, &err);
 *   us_eval_run(m, llm, ids, n, NULL, 0, &p, NULL, &ref, &dense, &err);    // records the reference
 *   ... a model with o.method = US_METHOD_UNISPARSE ...
 *   us_eval_run(m2, llm, ids, n, NULL, 0, &p, &ref, NULL, &sparse, &err);  // sparse.kl, .agreement, .exact
 *   us_eval_answer_free(&dense), us_eval_answer_free(&sparse), us_eval_reference_free(&ref);
 *
 * How the KL is measured: the reference run keeps its next-token logits at every position of its
 * answer (stop token included). A method's run gets its own logits at a position from generation
 * itself (us_gen_hooks.on_logits) as long as its greedy answer so far equals the reference's: the
 * inputs are then the same tokens. From the first differing token on, the method's cache is cut back
 * to the common prefix (us_gemma3_truncate) and the remaining reference tokens are fed one at a time,
 * exactly as decoding feeds them, so every position is teacher-forced on the reference answer with
 * the method's own prefill in the cache. Answers that agree cost nothing extra; a divergence costs
 * at most max_tokens single-token steps. (Feeding the reference tokens as one chunk instead would
 * send them through the method's sparse prefill path, which decoding never uses.) The answer is text,
 * so teacher forcing is the same with or without images in the prompt: they are all in the cache. */
#ifndef UNISPARSE_EVAL_RUNNER_H
#define UNISPARSE_EVAL_RUNNER_H

#include "generate.h"

#include <stdbool.h>

/* Logit rows compared by the KL: those generation may pick, the ids below both the tokenizer's
 * vocabulary size and 262144 (the image soft token and any padding rows are never picked). */
#define US_EVAL_KL_VOCAB 262144

typedef struct {
    int32_t *seq; /* the answer followed by its stop token when it stopped (n_seq) */
    int n_seq;
    float *logits; /* (n_seq, vocab): the next-token logits at each position */
    int vocab;
} us_eval_reference; /* owned: us_eval_reference_free */

void us_eval_reference_free(us_eval_reference *r);

typedef struct {
    int max_tokens;    /* answer budget (>= 1) */
    int prefill_chunk; /* prompt tokens per prefill call; 0 = the whole prompt in one call */
    int image_tokens;  /* soft tokens per image when the prompt shows images, else 0: a prefill call never
                          cuts an image, so the model's chunk must hold one */
    void *user;
    void (*on_prefill)(void *user, int64_t done, int64_t total); /* may be NULL */
} us_eval_run_params;

typedef struct {
    int32_t *ids; /* the answer, stop token excluded (owned: us_eval_answer_free) */
    int n;
    const char *stop; /* as us_gen_result.stop */
    int64_t prompt_tokens;
    double prefill_ms, decode_ms; /* decode: generation after the first token, teacher forcing excluded */
    double attn_ms, select_ms;    /* global layers' prefill attention, and its selection */
    double density;               /* kept / visible (query, key) pairs of that attention */
    double agreement;             /* token agreement with the reference (eval_metrics.h); 1 when recording */
    bool exact;                   /* the same answer tokens and stop as the reference */
    double kl;                    /* mean KL(reference || this) over the reference's positions; 0 when recording */
    int kl_positions;             /* the reference's n_seq */
    int forced;                   /* positions teacher-forced after a divergence */
} us_eval_answer;

void us_eval_answer_free(us_eval_answer *a);

/* Sets o->max_ctx (prompt + answer) and o->max_batch (the prefill chunk, at least an image) for an
 * n-token prompt. */
void us_eval_size_model(us_gemma3_opts *o, int64_t n, const us_eval_run_params *p);

/* Empties m's cache and answers prompt[0 .. n) greedily, its image tokens taking image_rows
 * (n_image_rows, hidden) in order. Exactly one of ref (compare with it) and
 * rec (record this run as the reference) is given. m's cache must hold n + max_tokens positions;
 * llm gives the weights m was made from, the stop ids and the tokenizer (only its vocabulary size
 * is used). On error *out and *rec hold nothing to free. */
us_status us_eval_run(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n, const float *image_rows,
                      int64_t n_image_rows, const us_eval_run_params *p, const us_eval_reference *ref,
                      us_eval_reference *rec, us_eval_answer *out, us_error *err);

#endif
