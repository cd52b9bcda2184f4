/* unisparse/synthetic.h: structured synthetic attention inputs.
 *
 * Random Gaussian Q/K give near-uniform attention that no sparse method can exploit honestly;
 * these inputs plant the structures real models show (attention sinks, local windows, vertical
 * stripes, slash lines, needles) on top of noise, so that sparse methods have something to find
 * and the needles tell whether they found it.
 */
#ifndef UNISPARSE_SYNTHETIC_H
#define UNISPARSE_SYNTHETIC_H

#include "unisparse/attention.h"

typedef enum {
    US_SYN_MIXED = 0, /* all of the below together */
    US_SYN_SINKS,
    US_SYN_LOCAL,
    US_SYN_VERTICAL,
    US_SYN_SLASH,
    US_SYN_NEEDLES,
    US_SYN_RANDOM,    /* plain Gaussian: the honest worst case */
    US_SYN_COUNT
} us_synthetic_kind;

const char *us_synthetic_kind_name(us_synthetic_kind k);
int us_synthetic_kind_parse(const char *s); /* -1 when unknown */

/* A planted needle: query position `query` attends strongly to key position `key` (head h). */
typedef struct {
    int h;
    int64_t query, key;
} us_needle;

/* Fills contiguous f32 q [hq, n, d], k and v [hkv, n, d] deterministically from seed.
 * needles (optional, room for *n_needles in, count out) lists the planted needles. */
us_status us_synthetic_qkv(us_synthetic_kind kind, int64_t n, int hq, int hkv, int d, uint64_t seed, float *q,
                           float *k, float *v, us_needle *needles, int *n_needles, us_error *err);

#endif
