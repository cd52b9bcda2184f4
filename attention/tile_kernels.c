/* tile_kernels.c: picks the AVX-512 or the AVX2 build of the tile products once, by CPUID. */
#include "tile_kernels.h"

#include <stdbool.h>

void us_tile_qk_avx512(const float *q, const float *kt, float *s, int m_pad, int n_pad, int d, int ldk, int lds);
void us_tile_pv_avx512(const float *p, const float *v, float *o, int m_pad, int n, int d, int ldp);
void us_tile_qk_avx2(const float *q, const float *kt, float *s, int m_pad, int n_pad, int d, int ldk, int lds);
void us_tile_pv_avx2(const float *p, const float *v, float *o, int m_pad, int n, int d, int ldp);

float us_tile_row_max_avx512(const float *s, int n);
float us_tile_row_max_avx2(const float *s, int n);
float us_tile_exp2_row_avx512(float *s, int n, float m);
float us_tile_exp2_row_avx2(float *s, int n, float m);

static bool use_avx512(void)
{
    static int cached = -1; /* benign race: every thread computes the same answer */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    }
    return cached;
}

void us_tile_qk(const float *q, const float *kt, float *s, int m_pad, int n_pad, int d, int ldk, int lds)
{
    (use_avx512() ? us_tile_qk_avx512 : us_tile_qk_avx2)(q, kt, s, m_pad, n_pad, d, ldk, lds);
}

void us_tile_pv(const float *p, const float *v, float *o, int m_pad, int n, int d, int ldp)
{
    (use_avx512() ? us_tile_pv_avx512 : us_tile_pv_avx2)(p, v, o, m_pad, n, d, ldp);
}

float us_tile_row_max(const float *s, int n)
{
    return (use_avx512() ? us_tile_row_max_avx512 : us_tile_row_max_avx2)(s, n);
}

float us_tile_exp2_row(float *s, int n, float m)
{
    return (use_avx512() ? us_tile_exp2_row_avx512 : us_tile_exp2_row_avx2)(s, n, m);
}

const char *us_tile_isa(void) { return use_avx512() ? "avx512" : "avx2"; }
