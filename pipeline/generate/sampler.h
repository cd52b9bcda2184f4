/* sampler.h: picks the next token from logits: greedy, or temperature / top-k / top-p sampling.
 *
 *   us_sampler *s = NULL;
 *   us_sampler_create(vocab, 0.7f, 40, 0.95f, seed, &s, &err);
 *   int32_t next = us_sampler_pick(s, logits);
 *   us_sampler_free(&s);
 *
 * Rows >= 262144 (the image soft token and beyond) are never picked. All scratch is allocated at
 * creation; picking allocates nothing. */
#ifndef UNISPARSE_SAMPLER_H
#define UNISPARSE_SAMPLER_H

#include "unisparse/attention.h"

#include <stdint.h>

typedef struct us_sampler us_sampler;

/* temperature 0 = greedy (top_k, top_p ignored); top_k 0 = all; top_p 1 = off. */
us_status us_sampler_create(int vocab, float temperature, int top_k, float top_p, uint64_t seed, us_sampler **out,
                            us_error *err);
void us_sampler_free(us_sampler **s);
int32_t us_sampler_pick(us_sampler *s, const float *logits);

#endif
