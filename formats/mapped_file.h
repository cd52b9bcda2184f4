/* mapped_file.h: a whole regular file mapped read-only, the first step of every file-format reader
 * here (safetensors, GGUF). Errors name the file. */
#ifndef UNISPARSE_MAPPED_FILE_H
#define UNISPARSE_MAPPED_FILE_H

#include "unisparse/attention.h"

#include <stddef.h>

typedef struct {
    void *data;  /* PROT_READ, MAP_PRIVATE; NULL when not mapped */
    size_t size;
} us_mapped_file;

/* Maps path. A file shorter than min_size bytes is US_ERR_FORMAT, "truncated", naming what needed
 * them (`what`, e.g. "the 8-byte header length"), checked before mmap, which would reject an empty
 * file with an unhelpful EINVAL. */
us_status us_mapped_file_open(const char *path, size_t min_size, const char *what, us_mapped_file *out,
                              us_error *err);
void us_mapped_file_close(us_mapped_file *f);

#endif
