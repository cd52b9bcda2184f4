/* fuzz_gguf.c: us_gguf_open on arbitrary bytes, then every metadata element through every typed
 * accessor, every tensor info, every row of every tensor with a dequantiser (a bounded budget of
 * values per input), and the Gemma 3 config and weight table built from it (gemma3_gguf.c). */
#include "fuzz_entry.h"

#include "gemma3_gguf.h"
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS_PER_KV 4096
#define MAX_VALUES (1 << 20) /* dequantised values per input */

static void touch_kvs(const us_gguf *g)
{
    for (int64_t i = 0; i < us_gguf_kv_count(g); i++) {
        const us_gguf_kv *kv = us_gguf_kv_at(g, i);
        if (us_gguf_find_kv(g, kv->key) != kv) __builtin_trap(); /* keys are unique */
        uint64_t n = kv->count < MAX_ELEMS_PER_KV ? kv->count : MAX_ELEMS_PER_KV;
        for (uint64_t e = 0; e < n; e++) {
            int64_t v;
            double f;
            (void)us_gguf_kv_int(kv, e, &v);
            (void)us_gguf_kv_float(kv, e, &f);
            const us_gguf_str *s = us_gguf_kv_str(kv, e);
            if (s && s->s[s->len] != '\0') __builtin_trap();
        }
        int64_t v;
        double f;
        const char *str;
        const us_gguf_kv *arr;
        (void)us_gguf_get_int(g, kv->key, &v, NULL);
        (void)us_gguf_get_float(g, kv->key, &f, NULL);
        (void)us_gguf_get_string(g, kv->key, &str, NULL);
        (void)us_gguf_get_array(g, kv->key, &arr, NULL);
    }
}

static void touch_tensors(const us_gguf *g)
{
    int64_t budget = MAX_VALUES;
    for (int64_t i = 0; i < us_gguf_tensor_count(g); i++) {
        const us_gguf_tensor *t = us_gguf_tensor_at(g, i);
        if (us_gguf_find_tensor(g, t->name) != t) __builtin_trap(); /* names are unique */
        if (!us_ggml_can_dequantize(t->type) || t->n_rows == 0 || t->ne[0] == 0) continue;
        float *row = malloc((size_t)t->ne[0] * sizeof *row);
        if (!row) continue;
        us_error err;
        for (int64_t r = 0; r < t->n_rows && budget >= t->ne[0]; r++, budget -= t->ne[0])
            if (us_gguf_tensor_row(g, t, r, row, &err)) __builtin_trap(); /* a validated row always decodes */
        free(row);
    }
}

int us_fuzz_gguf(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    us_gguf *g = NULL;
    us_error err;
    us_status s = us_gguf_open(path, &g, &err);
    if (s) return s;
    touch_kvs(g);
    touch_tensors(g);
    us_gemma3_config c;
    s = us_gemma3_config_from_gguf(g, &c, &err);
    us_gguf_close(&g);
    if (s) return s;
    us_gemma3_weights *w = NULL;
    s = us_gemma3_weights_load_gguf(path, &w, &err);
    us_gemma3_weights_free(&w);
    return s;
}
