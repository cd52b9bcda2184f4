/* tile_kernels.h: the two matrix products of one attention tile, register-blocked with GCC vector
 * extensions and built for AVX-512 and for AVX2, picked once by CPUID. */
#ifndef UNISPARSE_TILE_KERNELS_H
#define UNISPARSE_TILE_KERNELS_H

#include <stdint.h>

/* s[i][j] = sum_c q[i][c] * kt[c][j] for i < m_pad (a multiple of 8), j < n_pad (a multiple of
 * 32). q: [m_pad, d] row-major; kt: [d, ldk] (K transposed); s: [m_pad, lds]. */
void us_tile_qk(const float *q, const float *kt, float *s, int m_pad, int n_pad, int d, int ldk, int lds);

/* o[i][c] += sum_{j < n} p[i][j] * v[j][c] for i < m_pad (a multiple of 4), c < d.
 * p: [m_pad, ldp]; v: [n, d]; o: [m_pad, d]. */
void us_tile_pv(const float *p, const float *v, float *o, int m_pad, int n, int d, int ldp);

/* Largest of s[0 .. n), n >= 1. */
float us_tile_row_max(const float *s, int n);
/* s[c] = 2^(s[c] - m) for c < n (m >= every s[c]); returns the sum. */
float us_tile_exp2_row(float *s, int n, float m);

/* "avx512" or "avx2": the build the products dispatch to on this CPU. */
const char *us_tile_isa(void);

#endif
