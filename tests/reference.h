/* reference.h: independent float64 references for the tests. */
#ifndef UNISPARSE_TESTS_REFERENCE_H
#define UNISPARSE_TESTS_REFERENCE_H

#include "unisparse/attention.h"

#include <stdbool.h>
#include <stdint.h>

/* Token-level mask written from the definition, not from the library's prefix trick. */
bool ref_visible(const us_attn_args *a, int64_t qpos, int64_t kpos);
/* Naive attention in float64: o [hq, nq, d], lse [hq, nq] (NULL to skip). */
void ref_attention_f64(const us_attn_args *a, double *o, double *lse);
/* ||x - y|| / ||y|| over n floats (x) and doubles (y). */
double ref_rel_err(const float *x, const double *y, int64_t n);
/* Deterministic Gaussian fill. */
void ref_fill_gaussian(float *x, int64_t n, uint64_t seed, float stddev);

#endif
