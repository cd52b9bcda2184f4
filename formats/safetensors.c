/* safetensors.c: a validating, memory-mapped safetensors reader and an atomic writer.
 *
 * The reader trusts nothing in the file: every length, offset and shape is checked against the
 * mapping before a pointer into it is handed out, so a truncated or hostile file yields an error
 * message, never a read outside the mapping. (A file truncated by someone else *after* it was
 * mapped can still raise SIGBUS; no mmap reader can prevent that.) */
#include "safetensors.h"
#include "mapped_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation's limit; a larger header is corruption, not a model. */
#define ST_MAX_HEADER 100000000ull
/* Integers above 2^53 do not survive cJSON's doubles, and no real offset or dim is that big. */
#define ST_MAX_INT 9007199254740992.0

struct us_safetensors {
    char *path;
    void *map;
    size_t map_size;
    us_st_tensor *tensors;      /* in header order */
    const us_st_tensor **by_name; /* sorted by name, for find and the duplicate check */
    int n;
    char **meta_keys, **meta_values;
    int n_meta;
};

static const struct {
    const char *name;
    size_t size;
    int dtype;
} k_dtypes[] = {
    {"F64", 8, -1}, {"F32", 4, US_F32}, {"F16", 2, US_F16}, {"BF16", 2, US_BF16},
    {"I64", 8, -1}, {"I32", 4, -1},     {"I16", 2, -1},     {"I8", 1, -1},
    {"U8", 1, -1},  {"BOOL", 1, -1},    {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
    {"U16", 2, -1}, {"U32", 4, -1},     {"U64", 8, -1},
};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

static int find_dtype(const char *name)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(k_dtypes[i].name, name) == 0) return i;
    return -1;
}

/* product(shape) * elem_size into *out; 0 on overflow. A zero dim makes the product 0 whatever
 * the other dims are, so it is looked for first rather than multiplied in order. */
static int shape_bytes(const int64_t *shape, int ndim, size_t elem_size, size_t *out)
{
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) {
            *out = 0;
            return 1;
        }
    size_t total = elem_size;
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX / total) return 0;
        total *= (size_t)shape[i];
    }
    *out = total;
    return 1;
}

static const char *format_shape(char *buf, size_t cap, const int64_t *shape, int ndim)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const us_st_tensor *const *)a)->name, (*(const us_st_tensor *const *)b)->name);
}

static int cmp_name_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const us_st_tensor *const *)elem)->name);
}

/* ---- reading ------------------------------------------------------------------------------- */

/* A JSON number that is a whole number in [0, 2^53]: 1 ok, 0 not such a number, -1 negative. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (v < 0) return -1;
    if (!(v <= ST_MAX_INT) || (double)(uint64_t)v != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static us_status parse_shape(const char *path, const char *name, const cJSON *arr, us_st_tensor *t,
                             us_error *err)
{
    if (!cJSON_IsArray(arr))
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": missing or non-array \"shape\"", path, name);
    int ndim = cJSON_GetArraySize(arr);
    if (ndim > US_ST_MAX_DIMS)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": shape has %d dims, more than %d", path, name,
                            ndim, US_ST_MAX_DIMS);
    t->ndim = ndim;
    int i = 0;
    for (const cJSON *d = arr->child; d; d = d->next, i++) {
        uint64_t v = 0;
        int ok = json_uint(d, &v);
        if (ok < 0)
            return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] = %g is negative", path, name, i,
                                d->valuedouble);
        if (!ok)
            return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer",
                                path, name, i);
        t->shape[i] = (int64_t)v;
    }
    return US_OK;
}

static us_status parse_offsets(const char *path, const char *name, const cJSON *arr, uint64_t data_size,
                               uint64_t *begin, uint64_t *end, us_error *err)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 2 || json_uint(arr->child, begin) != 1 ||
        json_uint(arr->child->next, end) != 1)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": \"data_offsets\" must be two non-negative integers", path, name);
    if (*begin > *end)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] begin after end",
                            path, name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end > data_size)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": data_offsets end %llu is past the end of the %llu-byte data "
                            "section (truncated file?)",
                            path, name, (unsigned long long)*end, (unsigned long long)data_size);
    return US_OK;
}

static us_status parse_tensor(const char *path, const cJSON *item, const unsigned char *data, uint64_t data_size,
                              us_st_tensor *t, us_error *err)
{
    const char *name = item->string;
    size_t name_len = strlen(name);
    if (name_len >= sizeof t->name)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor name \"%.40s...\" is %zu bytes, more than %zu", path,
                            name, name_len, sizeof t->name - 1);
    memcpy(t->name, name, name_len + 1);
    if (!cJSON_IsObject(item))
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", path, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype))
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": missing or non-string \"dtype\"", path, name);
    int k = find_dtype(dtype->valuestring);
    if (k < 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", path, name,
                            dtype->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", k_dtypes[k].name);
    t->dtype = k_dtypes[k].dtype;
    t->elem_size = k_dtypes[k].size;

    us_status s = parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), t, err);
    if (s) return s;
    uint64_t begin = 0, end = 0;
    s = parse_offsets(path, name, cJSON_GetObjectItemCaseSensitive(item, "data_offsets"), data_size, &begin, &end,
                      err);
    if (s) return s;

    char sh[160];
    size_t need = 0;
    if (!shape_bytes(t->shape, t->ndim, t->elem_size, &need))
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s overflows a byte count", path,
                            name, format_shape(sh, sizeof sh, t->shape, t->ndim), t->dtype_name);
    if (need != end - begin)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": shape %s of %s needs %zu bytes but data_offsets [%llu, %llu] "
                            "hold %llu",
                            path, name, format_shape(sh, sizeof sh, t->shape, t->ndim), t->dtype_name, need,
                            (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)(end - begin));
    t->data = data + begin;
    t->nbytes = need;
    return US_OK;
}

static us_status parse_metadata(us_safetensors *st, const cJSON *obj, us_error *err)
{
    if (st->meta_keys)
        return us_error_set(err, US_ERR_FORMAT, "%s: \"__metadata__\" appears twice", st->path);
    if (!cJSON_IsObject(obj))
        return us_error_set(err, US_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", st->path);
    int n = cJSON_GetArraySize(obj);
    /* +1: never calloc(0), and a non-NULL meta_keys marks "seen". */
    st->meta_keys = calloc((size_t)n + 1, sizeof *st->meta_keys);
    st->meta_values = calloc((size_t)n + 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values)
        return us_error_set(err, US_ERR_NOMEM, "%s: out of memory for the metadata", st->path);
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return us_error_set(err, US_ERR_FORMAT, "%s: \"__metadata__\" value \"%.64s\" is not a string",
                                st->path, kv->string);
        st->meta_keys[st->n_meta] = strdup(kv->string);
        st->meta_values[st->n_meta] = strdup(kv->valuestring);
        st->n_meta++; /* counted before the check so close frees a half-made pair */
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
            return us_error_set(err, US_ERR_NOMEM, "%s: out of memory for the metadata", st->path);
    }
    return US_OK;
}

/* Parses the JSON that starts at map + 8 and fills st. */
static us_status parse_header(us_safetensors *st, const char *json, size_t len, us_error *err)
{
    const unsigned char *data = (const unsigned char *)json + len;
    uint64_t data_size = st->map_size - 8 - len;

    /* cJSON wants a NUL-terminated string and the mapping has none, so parse a copy. A NUL inside
     * the header would silently end the parse early, so it is an error of its own. */
    if (memchr(json, 0, len))
        return us_error_set(err, US_ERR_FORMAT, "%s: header contains a NUL byte at offset %td", st->path,
                            (const char *)memchr(json, 0, len) - json);
    char *copy = malloc(len + 1);
    if (!copy) return us_error_set(err, US_ERR_NOMEM, "%s: out of memory for a %zu-byte header", st->path, len);
    memcpy(copy, json, len);
    copy[len] = 0;
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &stop, 0);
    us_status s = US_OK;
    if (!root) {
        size_t at = stop ? (size_t)(stop - copy) : 0;
        s = us_error_set(err, US_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %zu)", st->path,
                         at, len);
        goto done;
    }
    /* The writer pads with spaces; anything else after the value is corruption. */
    for (const char *p = stop; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = us_error_set(err, US_ERR_FORMAT, "%s: header has bytes after the JSON value at byte %td",
                             st->path, p - copy);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: header is not a JSON object", st->path);
        goto done;
    }

    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next) n += strcmp(it->string, "__metadata__") != 0;
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    st->by_name = calloc((size_t)n + 1, sizeof *st->by_name);
    if (!st->tensors || !st->by_name) {
        s = us_error_set(err, US_ERR_NOMEM, "%s: out of memory for %d tensors", st->path, n);
        goto done;
    }
    for (const cJSON *it = root->child; it && !s; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            s = parse_metadata(st, it, err);
        } else {
            s = parse_tensor(st->path, it, data, data_size, &st->tensors[st->n], err);
            st->by_name[st->n] = &st->tensors[st->n];
            st->n += !s;
        }
    }
    if (s) goto done;
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_by_name);
    for (int i = 1; i < st->n; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0) {
            s = us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" appears twice", st->path, st->by_name[i]->name);
            goto done;
        }
done:
    cJSON_Delete(root);
    free(copy);
    return s;
}

us_status us_safetensors_open(const char *path, us_safetensors **out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return us_error_set(err, US_ERR_INVALID, "us_safetensors_open: path is NULL");

    us_mapped_file mf;
    us_status ms = us_mapped_file_open(path, 8, "the 8-byte header length", &mf, err);
    if (ms) return ms;
    void *map = mf.data;
    size_t size = mf.size;

    us_safetensors *st = calloc(1, sizeof *st);
    char *path_copy = strdup(path);
    if (!st || !path_copy) {
        free(st);
        free(path_copy);
        munmap(map, size);
        return us_error_set(err, US_ERR_NOMEM, "%s: out of memory", path);
    }
    st->path = path_copy;
    st->map = map;
    st->map_size = size;

    const unsigned char *b = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    us_status s = US_OK;
    if (hlen > ST_MAX_HEADER)
        s = us_error_set(err, US_ERR_FORMAT, "%s: header length %llu is absurd (more than 100 MB): corrupt file",
                         path, (unsigned long long)hlen);
    else if (hlen > size - 8)
        s = us_error_set(err, US_ERR_FORMAT,
                         "%s: truncated: header length %llu exceeds the %zu bytes after the length field", path,
                         (unsigned long long)hlen, size - 8);
    else
        s = parse_header(st, (const char *)b + 8, (size_t)hlen, err);
    if (s) {
        us_safetensors_close(&st);
        return s;
    }
    *out = st;
    return US_OK;
}

void us_safetensors_close(us_safetensors **st)
{
    if (!st || !*st) return;
    us_safetensors *s = *st;
    for (int i = 0; i < s->n_meta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->meta_keys);
    free(s->meta_values);
    free(s->tensors);
    free(s->by_name);
    if (s->map) munmap(s->map, s->map_size);
    free(s->path);
    free(s);
    *st = NULL;
}

int us_safetensors_count(const us_safetensors *st) { return st ? st->n : 0; }

const us_st_tensor *us_safetensors_at(const us_safetensors *st, int i)
{
    return st && i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const us_st_tensor *us_safetensors_find(const us_safetensors *st, const char *name)
{
    if (!st || !name || st->n == 0) return NULL;
    const us_st_tensor *const *hit = bsearch(name, st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name_key);
    return hit ? *hit : NULL;
}

const char *us_safetensors_metadata(const us_safetensors *st, const char *key)
{
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

const char *us_safetensors_path(const us_safetensors *st) { return st ? st->path : NULL; }

/* ---- writing ------------------------------------------------------------------------------- */

static us_status check_write_tensor(const char *path, const us_st_tensor *t, int i, us_error *err)
{
    if (!memchr(t->name, 0, sizeof t->name))
        return us_error_set(err, US_ERR_INVALID, "%s: tensor %d: name is not NUL-terminated", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor %d: \"__metadata__\" is reserved", path, i);
    if (!memchr(t->dtype_name, 0, sizeof t->dtype_name) || find_dtype(t->dtype_name) < 0)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": unknown dtype \"%.*s\"", path, t->name,
                            (int)sizeof t->dtype_name, t->dtype_name);
    if (t->ndim < 0 || t->ndim > US_ST_MAX_DIMS)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": ndim %d outside [0, %d]", path, t->name,
                            t->ndim, US_ST_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0 || (double)t->shape[d] > ST_MAX_INT) /* the reader's range */
            return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": shape[%d] = %lld is outside [0, 2^53]",
                                path, t->name, d, (long long)t->shape[d]);
    char sh[160];
    size_t need = 0;
    if (!shape_bytes(t->shape, t->ndim, k_dtypes[find_dtype(t->dtype_name)].size, &need) || need != t->nbytes)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": nbytes %zu does not match shape %s of %s",
                            path, t->name, t->nbytes, format_shape(sh, sizeof sh, t->shape, t->ndim),
                            t->dtype_name);
    if (t->nbytes && !t->data)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": data is NULL", path, t->name);
    return US_OK;
}

/* Appends an exact integer: cJSON would print a double, which turns 10^15 into "1e+15". */
static int add_int(cJSON *arr, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_AddItemToArray(arr, cJSON_CreateRaw(buf));
}

/* The data layout: widest elements first, each group in the caller's order. Every offset is then a
 * multiple of its tensor's element size, and with the header padded to 8 bytes the mapped data is
 * naturally aligned, without gaps (which other readers reject). */
static void layout(const us_st_tensor *tensors, int n, uint64_t *begin, int *order)
{
    uint64_t off = 0;
    int k = 0;
    for (size_t w = 8; w >= 1; w /= 2)
        for (int i = 0; i < n; i++)
            if (k_dtypes[find_dtype(tensors[i].dtype_name)].size == w) {
                begin[i] = off;
                order[k++] = i;
                off += tensors[i].nbytes;
            }
}

/* Every item is attached to its parent as soon as it is made, so one cJSON_Delete frees it all
 * whichever allocation fails. */
static char *build_header(const us_st_tensor *tensors, int n, const uint64_t *begin, const char *const *meta,
                          int n_meta)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < n_meta; i++) ok = cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]) != NULL;
    }
    for (int i = 0; ok && i < n; i++) {
        const us_st_tensor *t = &tensors[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        ok = e && cJSON_AddStringToObject(e, "dtype", t->dtype_name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        ok = offs != NULL;
        for (int d = 0; ok && d < t->ndim; d++) ok = add_int(shape, (uint64_t)t->shape[d]);
        ok = ok && add_int(offs, begin[i]) && add_int(offs, begin[i] + t->nbytes);
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

static int put_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

/* Writes the whole file to tmp and syncs it; on failure removes tmp. */
static us_status write_tmp(const char *path, const char *tmp, const char *json, const us_st_tensor *tensors,
                           int n, const int *order, us_error *err)
{
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "       ";

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return us_error_set(err, US_ERR_IO, "%s: cannot create the temporary file %s: %s", path, tmp,
                            strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return us_error_set(err, US_ERR_IO, "%s: cannot open a stream on %s: %s", path, tmp, strerror(e));
    }
    const char *what = "write failed";
    int ok = put_all(f, le, 8) && put_all(f, json, len) && put_all(f, spaces, padded - len);
    for (int k = 0; ok && k < n; k++) ok = put_all(f, tensors[order[k]].data, tensors[order[k]].nbytes);
    /* fsync before the rename: otherwise a crash can leave the new name on an empty file. */
    if (ok) {
        what = "flush failed";
        ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    }
    int e = errno;
    if (fclose(f) != 0 && ok) {
        e = errno;
        what = "close failed";
        ok = 0;
    }
    if (ok) return US_OK;
    unlink(tmp);
    return us_error_set(err, US_ERR_IO, "%s: %s on %s: %s", path, what, tmp, strerror(e));
}

us_status us_safetensors_write(const char *path, const us_st_tensor *tensors, int n, const char *const *meta,
                               int n_meta, us_error *err)
{
    if (!path) return us_error_set(err, US_ERR_INVALID, "us_safetensors_write: path is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return us_error_set(err, US_ERR_INVALID, "%s: bad tensor list (n = %d)", path, n);
    if (n_meta < 0 || (n_meta > 0 && !meta))
        return us_error_set(err, US_ERR_INVALID, "%s: bad metadata list (n_meta = %d)", path, n_meta);
    for (int i = 0; i < 2 * n_meta; i++)
        if (!meta[i]) return us_error_set(err, US_ERR_INVALID, "%s: metadata entry %d is NULL", path, i);
    for (int i = 0; i < n; i++) {
        us_status s = check_write_tensor(path, &tensors[i], i, err);
        if (s) return s;
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, tensors[i].name) == 0)
                return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\" given twice", path, tensors[i].name);
    }

    size_t tmp_cap = strlen(path) + 32;
    uint64_t *begin = calloc((size_t)n + 1, sizeof *begin);
    int *order = calloc((size_t)n + 1, sizeof *order);
    char *tmp = malloc(tmp_cap), *json = NULL;
    if (begin && order && tmp) {
        layout(tensors, n, begin, order);
        json = build_header(tensors, n, begin, meta, n_meta);
    }
    us_status s = US_OK;
    if (!json) {
        s = us_error_set(err, US_ERR_NOMEM, "%s: out of memory while building the header", path);
    } else {
        snprintf(tmp, tmp_cap, "%s.tmp.%ld", path, (long)getpid());
        s = write_tmp(path, tmp, json, tensors, n, order, err);
        if (!s && rename(tmp, path) != 0) {
            s = us_error_set(err, US_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
            unlink(tmp);
        }
    }
    free(begin);
    free(order);
    free(tmp);
    free(json);
    return s;
}
