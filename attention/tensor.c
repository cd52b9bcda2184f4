/* tensor.c: dtypes, views and conversions to f32. */
#include "internal.h"

#include <string.h>

size_t us_dtype_size(us_dtype t) { return t == US_F32 ? 4 : 2; }

const char *us_dtype_name(us_dtype t)
{
    switch (t) {
    case US_F32: return "f32";
    case US_F16: return "f16";
    case US_BF16: return "bf16";
    }
    return "?";
}

us_tensor us_tensor_3d(void *data, us_dtype dtype, int64_t a, int64_t b, int64_t c)
{
    us_tensor t = {data, dtype, {a, b, c}, {b * c, c, 1}};
    return t;
}

#if defined(__F16C__)
#include <immintrin.h>

/* The CPU's conversion instructions (exact, like the portable code below, and much faster where
 * dequantisation converts a scale per block). */
float us_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

uint16_t us_f32_to_f16(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#else
float us_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t us_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00); /* nan */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (absx < 0x38800000u) { /* subnormal or zero in f16 */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23, man = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 .. 24 */
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx - 0x38000000u) >> 13);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}
#endif

float us_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t us_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float us_tensor_get(const us_tensor *t, int64_t i, int64_t j, int64_t k)
{
    int64_t off = i * t->stride[0] + j * t->stride[1] + k * t->stride[2];
    switch (t->dtype) {
    case US_F32: return ((const float *)t->data)[off];
    case US_F16: return us_f16_to_f32(((const uint16_t *)t->data)[off]);
    case US_BF16: return us_bf16_to_f32(((const uint16_t *)t->data)[off]);
    }
    return 0.0f;
}

void us_tensor_row_to_f32(const us_tensor *t, int64_t h, int64_t j, float mul, float *row)
{
    int64_t d = t->shape[2], base = h * t->stride[0] + j * t->stride[1];
    switch (t->dtype) {
    case US_F32: {
        const float *s = (const float *)t->data + base;
        for (int64_t k = 0; k < d; k++) row[k] = s[k] * mul;
        break;
    }
    case US_F16: {
        const uint16_t *s = (const uint16_t *)t->data + base;
        for (int64_t k = 0; k < d; k++) row[k] = us_f16_to_f32(s[k]) * mul;
        break;
    }
    case US_BF16: {
        const uint16_t *s = (const uint16_t *)t->data + base;
        for (int64_t k = 0; k < d; k++) row[k] = us_bf16_to_f32(s[k]) * mul;
        break;
    }
    }
}

void us_tensor_head_to_f32(const us_tensor *t, int64_t h, float mul, float *dst)
{
    for (int64_t j = 0; j < t->shape[1]; j++) us_tensor_row_to_f32(t, h, j, mul, dst + j * t->shape[2]);
}
