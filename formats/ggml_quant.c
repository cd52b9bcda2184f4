/* ggml_quant.c: the ggml type table (block sizes) and row dequantisers for F32, F16, BF16, Q8_0,
 * Q5_0, Q4_K and Q6_K, written from the block layouts documented in ggml_quant.h.
 *
 * Blocks are read byte by byte (f16 and u32 fields through memcpy / shifts), so a source row may
 * sit at any address, as GGUF tensor data inside a mapping may. */
#include "ggml_quant.h"

#include <string.h>

typedef struct {
    const char *name;
    int64_t block;
    size_t bytes;
} type_info;

/* Indexed by ggml type id; a NULL name marks a retired id. */
static const type_info k_types[] = {
    [US_GGML_F32] = {"F32", 1, 4},          [US_GGML_F16] = {"F16", 1, 2},
    [US_GGML_Q4_0] = {"Q4_0", 32, 18},      [US_GGML_Q4_1] = {"Q4_1", 32, 20},
    [US_GGML_Q5_0] = {"Q5_0", 32, 22},      [US_GGML_Q5_1] = {"Q5_1", 32, 24},
    [US_GGML_Q8_0] = {"Q8_0", 32, 34},      [US_GGML_Q8_1] = {"Q8_1", 32, 36},
    [US_GGML_Q2_K] = {"Q2_K", 256, 84},     [US_GGML_Q3_K] = {"Q3_K", 256, 110},
    [US_GGML_Q4_K] = {"Q4_K", 256, 144},    [US_GGML_Q5_K] = {"Q5_K", 256, 176},
    [US_GGML_Q6_K] = {"Q6_K", 256, 210},    [US_GGML_Q8_K] = {"Q8_K", 256, 292},
    [US_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [US_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [US_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [US_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [US_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},  [US_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [US_GGML_IQ2_S] = {"IQ2_S", 256, 82},   [US_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [US_GGML_I8] = {"I8", 1, 1},            [US_GGML_I16] = {"I16", 1, 2},
    [US_GGML_I32] = {"I32", 1, 4},          [US_GGML_I64] = {"I64", 1, 8},
    [US_GGML_F64] = {"F64", 1, 8},          [US_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [US_GGML_BF16] = {"BF16", 1, 2},        [US_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [US_GGML_TQ2_0] = {"TQ2_0", 256, 66},   [US_GGML_MXFP4] = {"MXFP4", 32, 17},
    [US_GGML_NVFP4] = {"NVFP4", 64, 36},    [US_GGML_Q1_0] = {"Q1_0", 128, 18},
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

int us_ggml_type_known(uint32_t t) { return t < N_TYPES && k_types[t].name != NULL; }

const char *us_ggml_type_name(uint32_t t) { return us_ggml_type_known(t) ? k_types[t].name : "unknown"; }

int64_t us_ggml_block_size(uint32_t t) { return us_ggml_type_known(t) ? k_types[t].block : 0; }

size_t us_ggml_block_bytes(uint32_t t) { return us_ggml_type_known(t) ? k_types[t].bytes : 0; }

int us_ggml_row_bytes(uint32_t t, int64_t n, size_t *out)
{
    if (!us_ggml_type_known(t) || n < 0 || n % k_types[t].block != 0) return -1;
    uint64_t blocks = (uint64_t)(n / k_types[t].block);
    if (blocks > SIZE_MAX / k_types[t].bytes) return -1;
    *out = (size_t)blocks * k_types[t].bytes;
    return 0;
}

int us_ggml_can_dequantize(uint32_t t)
{
    switch (t) {
    case US_GGML_F32: case US_GGML_F16: case US_GGML_BF16: case US_GGML_Q8_0:
    case US_GGML_Q5_0: case US_GGML_Q4_K: case US_GGML_Q6_K: return 1;
    default: return 0;
    }
}

/* ---- block decoders: one block from b into y ------------------------------------------------ */

static float rd_f16(const uint8_t *b) { return us_f16_to_f32((uint16_t)(b[0] | b[1] << 8)); }

static void block_q8_0(const uint8_t *b, float *y)
{
    float d = rd_f16(b);
    const int8_t *q = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)q[j];
}

static void block_q5_0(const uint8_t *b, float *y)
{
    float d = rd_f16(b);
    uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* Sub-block j (0..7) of a K-quant's 12 packed scale bytes: 6-bit scale and 6-bit min. Sub-blocks
 * 0-3 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4-7 keep the low 4 bits in a
 * nibble of byte j+4 and the high 2 bits in the top bits of bytes j-4 (scale) and j (min). */
static void k_scale_min(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K: qs holds 4 groups of 32 bytes; group g gives sub-block 2g from its low nibbles and
 * sub-block 2g+1 from its high nibbles. */
static void block_q4_k(const uint8_t *b, float *y)
{
    float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *scales = b + 4, *qs = b + 16;
    for (int g = 0; g < 4; g++) {
        int sc0, m0, sc1, m1;
        k_scale_min(2 * g, scales, &sc0, &m0);
        k_scale_min(2 * g + 1, scales, &sc1, &m1);
        float d0 = d * (float)sc0, o0 = dmin * (float)m0;
        float d1 = d * (float)sc1, o1 = dmin * (float)m1;
        const uint8_t *q = qs + 32 * g;
        for (int l = 0; l < 32; l++) {
            y[64 * g + l] = d0 * (float)(q[l] & 0x0F) - o0;
            y[64 * g + 32 + l] = d1 * (float)(q[l] >> 4) - o1;
        }
    }
}

/* Q6_K: two halves of 128 values, each from 64 ql bytes, 32 qh bytes and 8 scales. In a half,
 * value l + 32k (k = 0..3, l = 0..31) takes its low 4 bits from ql[l + 32(k&1)] (low nibble for
 * k < 2, high nibble otherwise), its high 2 bits from bits 2k..2k+1 of qh[l], and its scale from
 * scales[l/16 + 2k]. */
static void block_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rd_f16(b + 208);
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
            const uint8_t *lo = ql + 64 * h + 32 * (k & 1);
            for (int l = 0; l < 32; l++) {
                int q4 = k < 2 ? lo[l] & 0x0F : lo[l] >> 4;
                int q2 = (qh[32 * h + l] >> (2 * k)) & 3;
                float s = d * (float)sc[8 * h + l / 16 + 2 * k];
                y[128 * h + 32 * k + l] = s * (float)((q4 | q2 << 4) - 32);
            }
        }
    }
}

us_status us_ggml_dequantize_row(uint32_t t, const void *src, float *dst, int64_t n, us_error *err)
{
    if (!us_ggml_type_known(t))
        return us_error_set(err, US_ERR_INVALID, "dequantize: unknown ggml type %u", (unsigned)t);
    if (!us_ggml_can_dequantize(t))
        return us_error_set(err, US_ERR_UNSUPPORTED, "dequantize: no dequantiser for ggml type %s", k_types[t].name);
    if (n < 0 || n % k_types[t].block != 0)
        return us_error_set(err, US_ERR_INVALID, "dequantize: %s row of %lld values is not a whole number of %lld-value blocks",
                            k_types[t].name, (long long)n, (long long)k_types[t].block);
    if (n > 0 && (!src || !dst)) return us_error_set(err, US_ERR_INVALID, "dequantize: NULL buffer");
    const uint8_t *b = src;
    switch (t) {
    case US_GGML_F32:
        memcpy(dst, src, (size_t)n * 4);
        break;
    case US_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = rd_f16(b + 2 * i);
        break;
    case US_GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = us_bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        break;
    case US_GGML_Q8_0:
        for (int64_t i = 0; i < n / 32; i++) block_q8_0(b + 34 * i, dst + 32 * i);
        break;
    case US_GGML_Q5_0:
        for (int64_t i = 0; i < n / 32; i++) block_q5_0(b + 22 * i, dst + 32 * i);
        break;
    case US_GGML_Q4_K:
        for (int64_t i = 0; i < n / 256; i++) block_q4_k(b + 144 * i, dst + 256 * i);
        break;
    case US_GGML_Q6_K:
        for (int64_t i = 0; i < n / 256; i++) block_q6_k(b + 210 * i, dst + 256 * i);
        break;
    default:
        break;
    }
    return US_OK;
}
