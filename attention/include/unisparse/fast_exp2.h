/* fast_exp2.h: the project's vectorisable 2^x, shared by the attention library's softmaxes and the
 * encoders' and runtime's GELU. A loop of it vectorises where the compiler may turn its clamp into a
 * select (the build's -fno-trapping-math). */
#ifndef UNISPARSE_FAST_EXP2_H
#define UNISPARSE_FAST_EXP2_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Vectorisable 2^x for x <= 0 (flushes below -126 to 0); rel. error ~2e-7. */
static inline float us_exp2f(float x)
{
    x = x < -126.0f ? -126.0f : x;
    float fl = floorf(x);
    float f = x - fl; /* [0, 1) */
    /* minimax polynomial for 2^f on [0,1) */
    float p = 1.8775767e-3f;
    p = p * f + 8.9893397e-3f;
    p = p * f + 5.5826318e-2f;
    p = p * f + 2.4015361e-1f;
    p = p * f + 6.9315308e-1f;
    p = p * f + 9.9999994e-1f;
    int32_t bits = ((int32_t)fl + 127) << 23; /* 2^fl; memcpy (not a union) keeps loops vectorisable */
    float two_fl;
    memcpy(&two_fl, &bits, sizeof two_fl);
    return p * two_fl;
}

#endif
