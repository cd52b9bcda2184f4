/* fuzz_safetensors.c: us_safetensors_open on arbitrary bytes, then every accessor and every byte of
 * every tensor the reader hands out (a pointer outside the mapping faults here, not later). */
#include "fuzz_entry.h"

#include "safetensors.h"

int us_fuzz_safetensors(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    us_safetensors *st = NULL;
    us_error err;
    us_status s = us_safetensors_open(path, &st, &err);
    if (s) return s;
    volatile unsigned sum = 0;
    int n = us_safetensors_count(st);
    for (int i = 0; i < n; i++) {
        const us_st_tensor *t = us_safetensors_at(st, i);
        if (us_safetensors_find(st, t->name) == NULL) __builtin_trap(); /* every name is found */
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
    }
    (void)us_safetensors_find(st, "q");
    (void)us_safetensors_metadata(st, "mask");
    (void)sum;
    us_safetensors_close(&st);
    return US_OK;
}
