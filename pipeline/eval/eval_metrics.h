/* eval_metrics.h: how `unisparse eval` scores an answer and measures a method's fidelity to dense.
 *
 *   double acc = us_eval_score_all(answer_text, expected, n_expected);    // RULER string_match_all
 *   double agr = us_eval_agreement(dense_seq, nd, method_seq, nm);        // greedy token agreement
 *   double kl  = us_eval_kl_logits(dense_logits, method_logits, vocab);   // KL(dense || method), nats
 *
 * Definitions (the reports repeat them):
 * - accuracy: RULER's string_match_all, the fraction of the expected strings found in the answer,
 *   case-insensitively; averaged over samples.
 * - token agreement: the answer token sequences, each ended by its stop token when it stopped (eos or
 *   <end_of_turn>; none when it ran out of max_tokens), agree on a common prefix of c tokens;
 *   agreement = c / (length of the dense sequence). 1 exactly when the two greedy answers are the
 *   same tokens and stop the same way. The exact-match rate is the share of samples where it is 1.
 * - KL: KL(P_dense || P_method) of the next-token distributions at every position of the dense
 *   answer (its stop token included), both teacher-forced on the dense answer, averaged over the
 *   positions; the distributions are softmaxes of the logits computed in double precision. */
#ifndef UNISPARSE_EVAL_METRICS_H
#define UNISPARSE_EVAL_METRICS_H

#include <stdint.h>

/* Fraction of expected[0 .. n) that occur in answer, ignoring ASCII case (1 when n == 0). */
double us_eval_score_all(const char *answer, const char *const *expected, int n);

/* Whether needle occurs in hay, ignoring ASCII case ("" occurs everywhere). */
int us_eval_contains_nocase(const char *hay, const char *needle);

/* Length of the common prefix of a[0 .. na) and b[0 .. nb). */
int us_eval_common_prefix(const int32_t *a, int na, const int32_t *b, int nb);

/* common prefix / nref; 1 when both are empty, 0 when only ref is. */
double us_eval_agreement(const int32_t *ref, int nref, const int32_t *x, int nx);

/* KL(softmax(p) || softmax(q)) over n logits, in nats, computed in double: sum_i P_i (log P_i - log Q_i)
 * with log P_i = p_i - logsumexp(p). Exactly 0 for identical inputs; tiny negative rounding is
 * returned as 0. -inf logits (masked rows) are allowed where both are -inf, or where P_i is 0. */
double us_eval_kl_logits(const float *p, const float *q, int64_t n);

#endif
