/* qkv_file.c: attention inputs as safetensors (see qkv_file.h). */
#include "qkv_file.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static us_status view(const char *path, const us_safetensors *st, const char *name, us_tensor *t, void **copy,
                      us_error *err)
{
    const us_st_tensor *x = us_safetensors_find(st, name);
    if (!x) return us_error_set(err, US_ERR_FORMAT, "%s: no tensor '%s' (need q, k and v)", path, name);
    if (x->dtype < 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor '%s' has dtype %s; attention takes F32, F16 or BF16",
                            path, name, x->dtype_name);
    if (x->ndim != 3)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor '%s' has %d dims; expected 3 ([heads, tokens, dim])",
                            path, name, x->ndim);
    /* A zero dim makes the byte count 0 whatever the others are (up to 2^53 each), and us_tensor_3d
     * multiplies them (FUZZING.md, review finding R1); with every dim >= 1 their product is backed by
     * the file. */
    for (int i = 0; i < 3; i++)
        if (x->shape[i] < 1)
            return us_error_set(err, US_ERR_FORMAT,
                                "%s: tensor '%s' has shape [%lld, %lld, %lld]; every dim must be >= 1", path, name,
                                (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2]);
    void *data = (void *)x->data;
    if ((uintptr_t)data % x->elem_size) { /* a foreign writer may leave tensors misaligned */
        *copy = malloc(x->nbytes ? x->nbytes : 1);
        if (!*copy) return us_error_set(err, US_ERR_NOMEM, "%s: no memory to align tensor '%s'", path, name);
        memcpy(*copy, x->data, x->nbytes);
        data = *copy;
    }
    *t = us_tensor_3d(data, (us_dtype)x->dtype, x->shape[0], x->shape[1], x->shape[2]);
    return US_OK;
}

static int is_position(const cJSON *v)
{
    return cJSON_IsNumber(v) && fabs(v->valuedouble) <= 9007199254740992.0 && v->valuedouble == floor(v->valuedouble);
}

static us_status parse_spans(const char *path, const char *text, us_qkv *out, us_error *err)
{
    cJSON *arr = cJSON_Parse(text);
    us_status s = US_OK;
    if (!cJSON_IsArray(arr)) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: metadata 'spans' is not a JSON array of [start, end] pairs", path);
        goto done;
    }
    int n = cJSON_GetArraySize(arr);
    out->spans = calloc((size_t)(n > 0 ? n : 1), sizeof *out->spans);
    if (!out->spans) {
        s = us_error_set(err, US_ERR_NOMEM, "%s: no memory for %d spans", path, n);
        goto done;
    }
    /* Walked by ->next: cJSON_GetArrayItem(arr, i) would walk from the start each time, quadratic in a
     * list as long as a 100 MB header allows (FUZZING.md, review finding R3). A position must be a whole
     * number of magnitude at most 2^53 before it is converted (finding R2: 1e999 is inf). */
    int i = 0;
    for (const cJSON *p = arr->child; p; p = p->next, i++) {
        const cJSON *a = cJSON_GetArrayItem(p, 0), *b = cJSON_GetArrayItem(p, 1);
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || !is_position(a) || !is_position(b)) {
            s = us_error_set(err, US_ERR_FORMAT, "%s: metadata 'spans' item %d is not a [start, end] pair of integers",
                             path, i);
            goto done;
        }
        out->spans[i] = (us_span){(int64_t)a->valuedouble, (int64_t)b->valuedouble};
    }
    out->mask.spans = out->spans;
    out->mask.n_spans = n;
done:
    cJSON_Delete(arr);
    return s;
}

us_status us_qkv_load(const char *path, us_qkv *out, us_error *err)
{
    memset(out, 0, sizeof *out);
    out->q_offset = -1;
    us_status s = us_safetensors_open(path, &out->file, err);
    if (s) return s;
    if ((s = view(path, out->file, "q", &out->q, &out->copies[0], err)) ||
        (s = view(path, out->file, "k", &out->k, &out->copies[1], err)) ||
        (s = view(path, out->file, "v", &out->v, &out->copies[2], err)))
        goto fail;
    const char *mask = us_safetensors_metadata(out->file, "mask");
    int kind = mask ? us_mask_kind_parse(mask) : US_MASK_CAUSAL;
    if (kind < 0) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: metadata mask '%s' is not causal, bidirectional or spans", path,
                         mask);
        goto fail;
    }
    out->mask.kind = (us_mask_kind)kind;
    const char *spans = us_safetensors_metadata(out->file, "spans");
    if (kind == US_MASK_CAUSAL_SPANS && spans && (s = parse_spans(path, spans, out, err))) goto fail;
    const char *off = us_safetensors_metadata(out->file, "q_offset");
    if (off) out->q_offset = strtoll(off, NULL, 10);
    const char *scale = us_safetensors_metadata(out->file, "scale");
    if (scale) out->scale = strtof(scale, NULL);
    /* shapes: checked with the attention library's own rules, reported against the file */
    us_attn_args a = us_attn_args_default();
    a.q = out->q, a.k = out->k, a.v = out->v, a.o = out->q, a.mask = out->mask;
    a.q_offset = out->q_offset, a.scale = out->scale;
    us_error inner;
    if (us_attn_args_validate(&a, &inner)) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: %s", path, inner.msg);
        goto fail;
    }
    return US_OK;
fail:
    us_qkv_free(out);
    return s;
}

void us_qkv_free(us_qkv *x)
{
    us_safetensors_close(&x->file);
    free(x->spans);
    x->spans = NULL;
    for (int i = 0; i < 3; i++) {
        free(x->copies[i]);
        x->copies[i] = NULL;
    }
}

static us_st_tensor entry(const char *name, const us_tensor *t)
{
    us_st_tensor e;
    memset(&e, 0, sizeof e);
    snprintf(e.name, sizeof e.name, "%s", name);
    snprintf(e.dtype_name, sizeof e.dtype_name, "%s", t->dtype == US_F32 ? "F32" : t->dtype == US_F16 ? "F16" : "BF16");
    e.dtype = t->dtype;
    e.elem_size = us_dtype_size(t->dtype);
    e.ndim = 3;
    for (int i = 0; i < 3; i++) e.shape[i] = t->shape[i];
    e.data = t->data;
    e.nbytes = (size_t)(t->shape[0] * t->shape[1] * t->shape[2]) * e.elem_size;
    return e;
}

us_status us_qkv_save(const char *path, const us_tensor *q, const us_tensor *k, const us_tensor *v,
                      const us_mask *mask, us_error *err)
{
    const us_tensor *ts[3] = {q, k, v};
    const char *names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        const us_tensor *t = ts[i];
        if (t->stride[2] != 1 || t->stride[1] != t->shape[2] || t->stride[0] != t->shape[1] * t->shape[2])
            return us_error_set(err, US_ERR_INVALID, "%s: tensor %s must be contiguous to be saved", path, names[i]);
    }
    us_st_tensor e[3] = {entry("q", q), entry("k", k), entry("v", v)};
    char *spans = NULL;
    if (mask->kind == US_MASK_CAUSAL_SPANS) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < mask->n_spans; i++) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateNumber((double)mask->spans[i].start));
            cJSON_AddItemToArray(p, cJSON_CreateNumber((double)mask->spans[i].end));
            cJSON_AddItemToArray(arr, p);
        }
        spans = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        if (!spans) return us_error_set(err, US_ERR_NOMEM, "%s: no memory for the span list", path);
    }
    const char *meta[4] = {"mask", us_mask_kind_name(mask->kind), "spans", spans};
    us_status s = us_safetensors_write(path, e, 3, meta, spans ? 2 : 1, err);
    free(spans);
    return s;
}
