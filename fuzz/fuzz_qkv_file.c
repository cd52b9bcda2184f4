/* fuzz_qkv_file.c: us_qkv_load (the `attn --qkv` input) on arbitrary bytes: the safetensors layer,
 * the q/k/v shapes and dtypes, and the metadata (mask, spans, q_offset, scale). */
#include "fuzz_entry.h"

#include "qkv_file.h"

int us_fuzz_qkv_file(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    us_qkv x;
    us_error err;
    us_status s = us_qkv_load(path, &x, &err);
    if (s) return s;
    us_qkv_free(&x);
    return US_OK;
}
