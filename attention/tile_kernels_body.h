/* tile_kernels_body.h: the tile products, included once per instruction set by
 * tile_kernels_avx512.c and tile_kernels_avx2.c with TILE_SUFFIX set; see tile_kernels.h.
 *
 * QK^T keeps an 8 x 32 block of scores in 16 vector registers and walks the head dim, each step
 * loading two vectors of K^T and broadcasting eight query scalars: 16 FMAs per 10 loads.
 * PV keeps a 4 x 64 block of the output in 16 registers and walks the keys, each step loading four
 * vectors of V and broadcasting four probabilities. GCC lowers the 16-wide vectors to one zmm
 * (AVX-512) or two ymm (AVX2) per the file's compile flags. */
#include "tile_kernels.h"

#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

/* unaligned vector load and store; macros, so that each clone inlines its own ISA */
#define LOAD16(dst, ptr) memcpy(&(dst), (ptr), sizeof(v16))
#define STORE16(ptr, src) memcpy((ptr), &(src), sizeof(v16))

#define TILE_CAT2(a, b) a##b
#define TILE_CAT(a, b) TILE_CAT2(a, b)

void TILE_CAT(us_tile_qk, TILE_SUFFIX)(const float *q, const float *kt, float *s, int m_pad, int n_pad, int d, int ldk, int lds)
{
    for (int i = 0; i < m_pad; i += 8)
        for (int j = 0; j < n_pad; j += 32) {
            v16 acc[8][2];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = (v16){0};
            const float *qi = q + (int64_t)i * d;
            for (int c = 0; c < d; c++) {
                v16 k0, k1;
                LOAD16(k0, kt + (int64_t)c * ldk + j);
                LOAD16(k1, kt + (int64_t)c * ldk + j + 16);
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    float x = qi[(int64_t)r * d + c];
                    acc[r][0] += x * k0;
                    acc[r][1] += x * k1;
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                STORE16(s + (int64_t)(i + r) * lds + j, acc[r][0]);
                STORE16(s + (int64_t)(i + r) * lds + j + 16, acc[r][1]);
            }
        }
}

void TILE_CAT(us_tile_pv, TILE_SUFFIX)(const float *p, const float *v, float *o, int m_pad, int n, int d, int ldp)
{
    int d64 = d - d % 64;
    for (int i = 0; i < m_pad; i += 4) {
        for (int c = 0; c < d64; c += 64) {
            v16 acc[4][4];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) LOAD16(acc[r][u], o + (int64_t)(i + r) * d + c + 16 * u);
            for (int j = 0; j < n; j++) {
                const float *vj = v + (int64_t)j * d + c;
                v16 v0, v1, v2, v3;
                LOAD16(v0, vj);
                LOAD16(v1, vj + 16);
                LOAD16(v2, vj + 32);
                LOAD16(v3, vj + 48);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    float x = p[(int64_t)(i + r) * ldp + j];
                    acc[r][0] += x * v0;
                    acc[r][1] += x * v1;
                    acc[r][2] += x * v2;
                    acc[r][3] += x * v3;
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) STORE16(o + (int64_t)(i + r) * d + c + 16 * u, acc[r][u]);
        }
        /* head dims that are not a multiple of 64: the remaining columns, plainly */
        for (int r = 0; r < 4 && d64 < d; r++) {
            float *orow = o + (int64_t)(i + r) * d;
            for (int j = 0; j < n; j++) {
                float x = p[(int64_t)(i + r) * ldp + j];
                const float *vj = v + (int64_t)j * d;
                for (int c = d64; c < d; c++) orow[c] += x * vj[c];
            }
        }
    }
}

typedef int32_t v16i __attribute__((vector_size(64)));

/* Largest of s[0 .. n), n >= 1. */
float TILE_CAT(us_tile_row_max, TILE_SUFFIX)(const float *s, int n)
{
    float mx = s[0];
    int c = 0;
    if (n >= 16) {
        v16 m;
        LOAD16(m, s);
        for (c = 16; c + 16 <= n; c += 16) {
            v16 x;
            LOAD16(x, s + c);
            v16i gt = x > m;
            m = (v16)((gt & (v16i)x) | (~gt & (v16i)m));
        }
        for (int u = 0; u < 16; u++) mx = m[u] > mx ? m[u] : mx;
    }
    for (; c < n; c++) mx = s[c] > mx ? s[c] : mx;
    return mx;
}

/* 2^x for x <= 0, lanes below -126 flushed towards 0; see us_exp2f in unisparse/fast_exp2.h. */
static inline v16 TILE_CAT(exp2_v16, TILE_SUFFIX)(v16 x)
{
    const v16 lo = (v16){0} - 126.0f;
    v16i below = x < lo;
    x = (v16)((below & (v16i)lo) | (~below & (v16i)x));
    v16i t = __builtin_convertvector(x, v16i); /* truncates towards zero: floor for x <= 0 ... */
    v16 ft = __builtin_convertvector(t, v16);
    t += (v16i)(ft > x);                       /* ... once one is taken where it rounded up */
    ft = __builtin_convertvector(t, v16);
    v16 f = x - ft, p = f * 1.8775767e-3f + 8.9893397e-3f;
    p = p * f + 5.5826318e-2f;
    p = p * f + 2.4015361e-1f;
    p = p * f + 6.9315308e-1f;
    p = p * f + 9.9999994e-1f;
    return p * (v16)((t + 127) << 23);
}

/* s[c] = 2^(s[c] - m) for c < n; returns their sum. */
float TILE_CAT(us_tile_exp2_row, TILE_SUFFIX)(float *s, int n, float m)
{
    v16 acc = {0};
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        v16 x;
        LOAD16(x, s + c);
        x = TILE_CAT(exp2_v16, TILE_SUFFIX)(x - m);
        STORE16(s + c, x);
        acc += x;
    }
    float sum = 0.0f;
    for (int u = 0; u < 16; u++) sum += acc[u];
    for (; c < n; c++) {
        v16 x = {0};
        x[0] = s[c] - m;
        s[c] = TILE_CAT(exp2_v16, TILE_SUFFIX)(x)[0];
        sum += s[c];
    }
    return sum;
}
