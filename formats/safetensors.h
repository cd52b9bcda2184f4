/* safetensors.h: reading (memory-mapped) and writing safetensors files.
 *
 * Byte layout: [u64 little-endian N][N bytes of JSON header][data]. The header maps each tensor
 * name to {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...], "data_offsets": [begin, end]} with
 * offsets relative to the start of the data section, and may hold "__metadata__": {str: str}.
 *
 *   us_safetensors *st = NULL;
 *   us_error err;
 *   if (us_safetensors_open("x.safetensors", &st, &err)) { fprintf(stderr, "%s\n", err.msg); ... }
 *   const us_st_tensor *q = us_safetensors_find(st, "q");
 *   us_safetensors_close(&st);
 */
#ifndef UNISPARSE_SAFETENSORS_H
#define UNISPARSE_SAFETENSORS_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

#define US_ST_MAX_DIMS 8

typedef struct {
    char name[256];
    char dtype_name[16]; /* as in the file: "F32", "BF16", "I64", ... */
    int dtype;           /* us_dtype for F32 / F16 / BF16, -1 for the other known dtypes */
    size_t elem_size;
    int ndim;
    int64_t shape[US_ST_MAX_DIMS];
    const void *data;    /* inside the mapping; valid until close */
    size_t nbytes;
} us_st_tensor;

typedef struct us_safetensors us_safetensors;

/* Maps path and validates the whole header: JSON, dtypes, shapes, offsets inside the file and
 * consistent with shape x dtype. Errors name the file and the tensor. */
us_status us_safetensors_open(const char *path, us_safetensors **out, us_error *err);
void us_safetensors_close(us_safetensors **st);
int us_safetensors_count(const us_safetensors *st);
const us_st_tensor *us_safetensors_at(const us_safetensors *st, int i);
const us_st_tensor *us_safetensors_find(const us_safetensors *st, const char *name);
/* A string value of "__metadata__", or NULL. */
const char *us_safetensors_metadata(const us_safetensors *st, const char *key);
const char *us_safetensors_path(const us_safetensors *st);

/* Writes tensors (name, dtype_name, shape, data, nbytes used) and metadata pairs
 * meta[2i] = key, meta[2i+1] = value, atomically (a temporary file renamed into place). */
us_status us_safetensors_write(const char *path, const us_st_tensor *tensors, int n, const char *const *meta,
                               int n_meta, us_error *err);

#endif
