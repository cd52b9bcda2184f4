/* ggml_quant.h: ggml tensor types (as stored in GGUF files) and their dequantisation to f32.
 *
 * Every ggml type is stored in blocks of `block` values taking `block_bytes` bytes; a row of n
 * values (n a multiple of block) takes n / block * block_bytes bytes. The table knows every type
 * id llama.cpp's GGUF files may hold, so sizes can be validated for all of them; dequantisation is
 * implemented for the types Gemma 3 270M Q4_K_M uses plus the plain float types:
 *
 *   F32, F16, BF16     one value per block
 *   Q8_0   32 values, 34 bytes: f16 d | i8 q[32]                      x = d * q
 *   Q5_0   32 values, 22 bytes: f16 d | u32 qh (LE) | u8 qs[16]
 *          low nibble of qs[j] is value j, high nibble value j + 16; bit j of qh is the fifth
 *          bit of value j;                                            x = d * (q5 - 16)
 *   Q4_K  256 values, 144 bytes: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *          8 sub-blocks of 32 with 6-bit scale sc and min m packed in scales;
 *                                                                     x = d*sc*q4 - dmin*m
 *   Q6_K  256 values, 210 bytes: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
 *          16 sub-blocks of 16 with an 8-bit signed scale;            x = d * sc * (q6 - 32)
 *
 *   float row[640];
 *   if (us_ggml_dequantize_row(US_GGML_Q8_0, src, row, 640, &err)) ...
 */
#ifndef UNISPARSE_GGML_QUANT_H
#define UNISPARSE_GGML_QUANT_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

/* ggml_type ids as written in GGUF tensor infos. Ids that ggml has retired (4, 5, 31-33, 36-38)
 * are unknown. */
typedef enum {
    US_GGML_F32 = 0,
    US_GGML_F16 = 1,
    US_GGML_Q4_0 = 2,
    US_GGML_Q4_1 = 3,
    US_GGML_Q5_0 = 6,
    US_GGML_Q5_1 = 7,
    US_GGML_Q8_0 = 8,
    US_GGML_Q8_1 = 9,
    US_GGML_Q2_K = 10,
    US_GGML_Q3_K = 11,
    US_GGML_Q4_K = 12,
    US_GGML_Q5_K = 13,
    US_GGML_Q6_K = 14,
    US_GGML_Q8_K = 15,
    US_GGML_IQ2_XXS = 16,
    US_GGML_IQ2_XS = 17,
    US_GGML_IQ3_XXS = 18,
    US_GGML_IQ1_S = 19,
    US_GGML_IQ4_NL = 20,
    US_GGML_IQ3_S = 21,
    US_GGML_IQ2_S = 22,
    US_GGML_IQ4_XS = 23,
    US_GGML_I8 = 24,
    US_GGML_I16 = 25,
    US_GGML_I32 = 26,
    US_GGML_I64 = 27,
    US_GGML_F64 = 28,
    US_GGML_IQ1_M = 29,
    US_GGML_BF16 = 30,
    US_GGML_TQ1_0 = 34,
    US_GGML_TQ2_0 = 35,
    US_GGML_MXFP4 = 39,
    US_GGML_NVFP4 = 40,
    US_GGML_Q1_0 = 41
} us_ggml_type;

/* 1 when t is a ggml type id this table knows (sizes are then defined). */
int us_ggml_type_known(uint32_t t);
/* "Q4_K", ..., or "unknown". */
const char *us_ggml_type_name(uint32_t t);
/* Values per block and bytes per block; 0 for an unknown type. */
int64_t us_ggml_block_size(uint32_t t);
size_t us_ggml_block_bytes(uint32_t t);
/* Bytes of a row of n values: 0 on success, -1 when t is unknown, n is negative or not a multiple
 * of the block size, or the count overflows size_t. */
int us_ggml_row_bytes(uint32_t t, int64_t n, size_t *out);
/* 1 when us_ggml_dequantize_row handles t. */
int us_ggml_can_dequantize(uint32_t t);

/* Converts one row of n values of type t at src (no alignment needed) into dst[0..n-1].
 * US_ERR_INVALID when n is not a multiple of the block size, US_ERR_UNSUPPORTED for a type
 * without a dequantiser. */
us_status us_ggml_dequantize_row(uint32_t t, const void *src, float *dst, int64_t n, us_error *err);

#endif
