/* gguf.h: a validating, memory-mapped reader for GGUF files (llama.cpp's format, versions 2 and 3).
 *
 * Byte layout (all integers little-endian):
 *   u8[4] magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count x  { string key | u32 value_type | value }
 *   tensor_count x { string name | u32 n_dims (1..4) | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `alignment` | data section (tensor offsets are relative to its start)
 * where string = u64 length | bytes (no NUL), and a value is, by type:
 *   0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (u8 0/1), 8 string,
 *   9 array = u32 element_type | u64 count | count elements (not arrays), 10 u64, 11 i64, 12 f64.
 * alignment is metadata "general.alignment" (u32, a power of two), 32 when absent; every tensor
 * offset is a multiple of it. ne[0] is the row length (fastest-varying dimension).
 *
 *   us_gguf *g = NULL;
 *   us_error err;
 *   if (us_gguf_open("model.gguf", &g, &err)) { fprintf(stderr, "%s\n", err.msg); ... }
 *   int64_t layers;
 *   if (us_gguf_get_int(g, "gemma3.block_count", &layers, &err)) ...
 *   const us_gguf_tensor *t = us_gguf_find_tensor(g, "token_embd.weight");
 *   float row[640];
 *   us_gguf_tensor_row(g, t, 2, row, &err);      // row 2 of [262144, 640], dequantised
 *   us_gguf_close(&g);
 */
#ifndef UNISPARSE_GGUF_H
#define UNISPARSE_GGUF_H

#include "ggml_quant.h"
#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

#define US_GGUF_MAX_DIMS 4
#define US_GGUF_DEFAULT_ALIGNMENT 32

typedef enum {
    US_GGUF_UINT8 = 0,
    US_GGUF_INT8 = 1,
    US_GGUF_UINT16 = 2,
    US_GGUF_INT16 = 3,
    US_GGUF_UINT32 = 4,
    US_GGUF_INT32 = 5,
    US_GGUF_FLOAT32 = 6,
    US_GGUF_BOOL = 7,
    US_GGUF_STRING = 8,
    US_GGUF_ARRAY = 9,
    US_GGUF_UINT64 = 10,
    US_GGUF_INT64 = 11,
    US_GGUF_FLOAT64 = 12
} us_gguf_type;

/* A string copied out of the file, NUL-terminated (it may also hold NULs: len is the truth). */
typedef struct {
    const char *s;
    uint64_t len;
} us_gguf_str;

/* One metadata pair. For a scalar, count is 1 and elem_type equals type. For an array, type is
 * US_GGUF_ARRAY, elem_type the element type and count the element count. Numeric values are
 * read with the accessors below (raw points into the mapping, unaligned); string values and
 * string elements are in strs[0..count-1]. */
typedef struct {
    const char *key;
    us_gguf_type type;
    us_gguf_type elem_type;
    uint64_t count;
    const void *raw;
    const us_gguf_str *strs;
} us_gguf_kv;

typedef struct {
    const char *name;
    int n_dims;
    int64_t ne[US_GGUF_MAX_DIMS]; /* ne[0] = row length; unused dims are 1 */
    uint32_t type;                /* us_ggml_type */
    uint64_t offset;              /* from the start of the data section */
    const void *data;             /* inside the mapping; valid until close */
    size_t nbytes;
    int64_t n_rows;               /* ne[1] * ne[2] * ne[3] */
    size_t row_bytes;
} us_gguf_tensor;

typedef struct us_gguf us_gguf;

/* Maps path and validates the header, every key/value and every tensor info against the file
 * size before anything is allocated from it. Errors (US_ERR_IO, US_ERR_FORMAT) name the file. */
us_status us_gguf_open(const char *path, us_gguf **out, us_error *err);
void us_gguf_close(us_gguf **g);

const char *us_gguf_path(const us_gguf *g);
uint32_t us_gguf_version(const us_gguf *g);
uint32_t us_gguf_alignment(const us_gguf *g);
/* Byte offset of the data section in the file. */
uint64_t us_gguf_data_offset(const us_gguf *g);

int64_t us_gguf_kv_count(const us_gguf *g);
const us_gguf_kv *us_gguf_kv_at(const us_gguf *g, int64_t i);
const us_gguf_kv *us_gguf_find_kv(const us_gguf *g, const char *key);
const char *us_gguf_type_name(us_gguf_type t);

/* Typed reads of a key: US_ERR_FORMAT naming the file and the key when it is missing or of
 * another kind. get_int takes any integer type or bool (a u64 above INT64_MAX is an error);
 * get_float takes f32, f64 or any integer; get_array returns the pair of an array. */
us_status us_gguf_get_int(const us_gguf *g, const char *key, int64_t *out, us_error *err);
us_status us_gguf_get_float(const us_gguf *g, const char *key, double *out, us_error *err);
us_status us_gguf_get_string(const us_gguf *g, const char *key, const char **out, us_error *err);
us_status us_gguf_get_array(const us_gguf *g, const char *key, const us_gguf_kv **out, us_error *err);

/* Element i of kv (a scalar is element 0): 0 on success, -1 when i is out of range or the
 * element is not of that kind (same conversions as the getters above). */
int us_gguf_kv_int(const us_gguf_kv *kv, uint64_t i, int64_t *out);
int us_gguf_kv_float(const us_gguf_kv *kv, uint64_t i, double *out);
const us_gguf_str *us_gguf_kv_str(const us_gguf_kv *kv, uint64_t i);

int64_t us_gguf_tensor_count(const us_gguf *g);
const us_gguf_tensor *us_gguf_tensor_at(const us_gguf *g, int64_t i); /* file order */
const us_gguf_tensor *us_gguf_find_tensor(const us_gguf *g, const char *name);

/* Dequantises row r (0 .. n_rows-1) of t, ne[0] values, into dst. */
us_status us_gguf_tensor_row(const us_gguf *g, const us_gguf_tensor *t, int64_t r, float *dst, us_error *err);

#endif
