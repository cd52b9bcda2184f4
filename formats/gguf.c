/* gguf.c: the GGUF reader declared in gguf.h (byte layout there).
 *
 * The header is walked twice by one function: the first walk trusts nothing, checking every
 * count, length, type and offset against the mapping and counting what the second needs; only
 * then is memory allocated (in proportion to what the file really holds, never to what a count
 * field claims), and the second walk copies keys, names and strings into one arena. A file
 * truncated by someone else after it was mapped can still raise SIGBUS; no mmap reader can
 * prevent that. */
#include "gguf.h"
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_HEADER_BYTES 24u /* magic, version, tensor_count, kv_count */
#define GGUF_MIN_KV_BYTES 13u /* key length, value type, a 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u /* name length, n_dims, one dim, type, offset */

struct us_gguf {
    char *path;
    void *map;
    size_t map_size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    us_gguf_kv *kvs;
    us_gguf_tensor *tensors;
    const us_gguf_kv **kv_sorted;
    const us_gguf_tensor **tensor_sorted;
    us_gguf_str *strs; /* string values and string array elements */
    char *arena;       /* every string, NUL-terminated */
};

/* ---- the cursor ----------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *b;
    uint64_t size, pos;
    const char *path;
    us_error *err;
    /* second walk only: where copies go */
    int fill;
    char *arena;
    uint64_t arena_used;
    us_gguf_str *strs;
    uint64_t strs_used;
    /* counted by the first walk */
    uint64_t arena_need, strs_need;
} cursor;

static us_status need(cursor *c, uint64_t n, const char *what)
{
    if (n > c->size - c->pos)
        return us_error_set(c->err, US_ERR_FORMAT,
                            "%s: truncated: %s needs %llu bytes at offset %llu but the file has %llu", c->path, what,
                            (unsigned long long)n, (unsigned long long)c->pos, (unsigned long long)c->size);
    return US_OK;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static us_status rd_u32(cursor *c, uint32_t *v, const char *what)
{
    us_status s = need(c, 4, what);
    if (s) return s;
    *v = (uint32_t)le(c->b + c->pos, 4);
    c->pos += 4;
    return US_OK;
}

static us_status rd_u64(cursor *c, uint64_t *v, const char *what)
{
    us_status s = need(c, 8, what);
    if (s) return s;
    *v = le(c->b + c->pos, 8);
    c->pos += 8;
    return US_OK;
}

/* A string; on the second walk it is copied into the arena and *out points at the copy. */
static us_status rd_str(cursor *c, us_gguf_str *out, const char *what)
{
    uint64_t len;
    us_status s = rd_u64(c, &len, what);
    if (s) return s;
    if (len > c->size - c->pos)
        return us_error_set(c->err, US_ERR_FORMAT,
                            "%s: %s has length %llu at offset %llu, more than the %llu bytes left in the file",
                            c->path, what, (unsigned long long)len, (unsigned long long)(c->pos - 8),
                            (unsigned long long)(c->size - c->pos));
    if (c->fill) {
        char *dst = c->arena + c->arena_used;
        memcpy(dst, c->b + c->pos, (size_t)len);
        dst[len] = 0;
        out->s = dst;
        out->len = len;
        c->arena_used += len + 1;
    } else {
        c->arena_need += len + 1;
    }
    c->pos += len;
    return US_OK;
}

/* ---- metadata --------------------------------------------------------------------------------- */

static size_t value_size(uint32_t t)
{
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sizes / sizeof sizes[0] ? sizes[t] : 0;
}

const char *us_gguf_type_name(us_gguf_type t)
{
    static const char *names[] = {"uint8",  "int8", "uint16", "int16",  "uint32", "int32", "float32",
                                  "bool",   "string", "array", "uint64", "int64", "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* count values of fixed-size type t, or strings; kv->raw / kv->strs are set on the second walk. */
static us_status rd_values(cursor *c, const char *key, uint32_t t, uint64_t count, us_gguf_kv *kv)
{
    if (t == US_GGUF_STRING) {
        if (count > (c->size - c->pos) / 8)
            return us_error_set(c->err, US_ERR_FORMAT,
                                "%s: key \"%s\": %llu strings cannot fit in the %llu bytes left in the file",
                                c->path, key, (unsigned long long)count, (unsigned long long)(c->size - c->pos));
        if (c->fill) kv->strs = c->strs + c->strs_used;
        for (uint64_t i = 0; i < count; i++) {
            us_gguf_str tmp;
            us_status s = rd_str(c, c->fill ? &c->strs[c->strs_used + i] : &tmp, "a string value");
            if (s) return s;
        }
        if (c->fill) c->strs_used += count;
        else c->strs_need += count;
        return US_OK;
    }
    size_t es = value_size(t);
    if (count > (c->size - c->pos) / es)
        return us_error_set(c->err, US_ERR_FORMAT,
                            "%s: key \"%s\": %llu values of %s cannot fit in the %llu bytes left in the file",
                            c->path, key, (unsigned long long)count, us_gguf_type_name((us_gguf_type)t),
                            (unsigned long long)(c->size - c->pos));
    if (t == US_GGUF_BOOL)
        for (uint64_t i = 0; i < count; i++)
            if (c->b[c->pos + i] > 1)
                return us_error_set(c->err, US_ERR_FORMAT, "%s: key \"%s\": bool value %u is neither 0 nor 1", c->path,
                                    key, c->b[c->pos + i]);
    if (kv) kv->raw = c->b + c->pos;
    c->pos += count * es;
    return US_OK;
}

static int known_value_type(uint32_t t) { return t <= US_GGUF_FLOAT64; }

static us_status rd_kv(cursor *c, us_gguf_kv *kv, uint32_t *alignment)
{
    us_gguf_str key = {NULL, 0};
    uint64_t key_at = c->pos;
    us_status s = rd_str(c, &key, "a metadata key");
    if (s) return s;
    /* Keys are identifiers: a NUL would make two different keys compare equal. */
    if (memchr(c->b + key_at + 8, 0, (size_t)(c->pos - key_at - 8)))
        return us_error_set(c->err, US_ERR_FORMAT, "%s: metadata key at offset %llu contains a NUL byte", c->path,
                            (unsigned long long)key_at);
    /* The name for messages: the arena copy on the second walk, a bounded view on the first. */
    char name[96];
    size_t klen = (size_t)(c->pos - key_at - 8);
    snprintf(name, sizeof name, "%.*s%s", (int)(klen < 80 ? klen : 80), (const char *)c->b + key_at + 8,
             klen < 80 ? "" : "...");

    uint32_t t;
    if ((s = rd_u32(c, &t, "a metadata value type"))) return s;
    if (!known_value_type(t))
        return us_error_set(c->err, US_ERR_FORMAT, "%s: key \"%s\": unknown value type %u", c->path, name,
                            (unsigned)t);
    uint32_t et = t;
    uint64_t count = 1;
    if (t == US_GGUF_ARRAY) {
        if ((s = rd_u32(c, &et, "an array element type"))) return s;
        if (!known_value_type(et))
            return us_error_set(c->err, US_ERR_FORMAT, "%s: key \"%s\": unknown array element type %u", c->path, name,
                                (unsigned)et);
        if (et == US_GGUF_ARRAY)
            return us_error_set(c->err, US_ERR_FORMAT, "%s: key \"%s\": arrays of arrays are not supported", c->path,
                                name);
        if ((s = rd_u64(c, &count, "an array length"))) return s;
    }
    uint64_t value_at = c->pos;
    if ((s = rd_values(c, name, et, count, c->fill ? kv : NULL))) return s;
    if (c->fill) {
        kv->key = key.s;
        kv->type = (us_gguf_type)t;
        kv->elem_type = (us_gguf_type)et;
        kv->count = count;
    }
    if (strcmp(name, "general.alignment") == 0) {
        if (t != US_GGUF_UINT32)
            return us_error_set(c->err, US_ERR_FORMAT, "%s: general.alignment is %s, not uint32", c->path,
                                us_gguf_type_name((us_gguf_type)t));
        uint32_t a = (uint32_t)le(c->b + value_at, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return us_error_set(c->err, US_ERR_FORMAT, "%s: general.alignment %u is not a power of two", c->path,
                                (unsigned)a);
        *alignment = a;
    }
    return US_OK;
}

/* ---- tensor infos --------------------------------------------------------------------------- */

static us_status rd_tensor(cursor *c, us_gguf_tensor *t, int64_t index)
{
    us_gguf_str name = {NULL, 0};
    uint64_t name_at = c->pos;
    us_status s = rd_str(c, &name, "a tensor name");
    if (s) return s;
    size_t nlen = (size_t)(c->pos - name_at - 8);
    if (memchr(c->b + name_at + 8, 0, nlen))
        return us_error_set(c->err, US_ERR_FORMAT, "%s: tensor %lld: name contains a NUL byte", c->path,
                            (long long)index);
    char nm[96];
    snprintf(nm, sizeof nm, "%.*s%s", (int)(nlen < 80 ? nlen : 80), (const char *)c->b + name_at + 8,
             nlen < 80 ? "" : "...");

    uint32_t n_dims;
    if ((s = rd_u32(c, &n_dims, "a tensor dimension count"))) return s;
    if (n_dims < 1 || n_dims > US_GGUF_MAX_DIMS)
        return us_error_set(c->err, US_ERR_FORMAT, "%s: tensor \"%s\": %u dimensions, not 1..%d", c->path, nm,
                            (unsigned)n_dims, US_GGUF_MAX_DIMS);
    int64_t ne[US_GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (uint32_t i = 0; i < n_dims; i++) {
        uint64_t v;
        if ((s = rd_u64(c, &v, "a tensor dimension"))) return s;
        if (v > (uint64_t)INT64_MAX)
            return us_error_set(c->err, US_ERR_FORMAT, "%s: tensor \"%s\": dimension %u = %llu is out of range",
                                c->path, nm, (unsigned)i, (unsigned long long)v);
        ne[i] = (int64_t)v;
    }
    uint32_t type;
    uint64_t offset;
    if ((s = rd_u32(c, &type, "a tensor type")) || (s = rd_u64(c, &offset, "a tensor offset"))) return s;
    if (!us_ggml_type_known(type))
        return us_error_set(c->err, US_ERR_FORMAT, "%s: tensor \"%s\": unknown ggml type %u", c->path, nm,
                            (unsigned)type);
    if (ne[0] % us_ggml_block_size(type) != 0)
        return us_error_set(c->err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": row length %lld is not a multiple of the %s block size %lld", c->path,
                            nm, (long long)ne[0], us_ggml_type_name(type), (long long)us_ggml_block_size(type));
    size_t row_bytes;
    if (us_ggml_row_bytes(type, ne[0], &row_bytes) != 0)
        return us_error_set(c->err, US_ERR_FORMAT, "%s: tensor \"%s\": row length %lld overflows a byte count",
                            c->path, nm, (long long)ne[0]);
    /* Rows, then bytes, with every product checked; a zero dim makes the product 0 whatever the
     * others are, so it is looked for first rather than multiplied in order. */
    int64_t rows = 1;
    for (int i = 1; i < US_GGUF_MAX_DIMS; i++)
        if (ne[i] == 0) rows = 0;
    for (int i = 1; i < US_GGUF_MAX_DIMS && rows; i++) {
        if (ne[i] > INT64_MAX / rows)
            return us_error_set(c->err, US_ERR_FORMAT,
                                "%s: tensor \"%s\": dimensions [%lld, %lld, %lld, %lld] overflow an element count",
                                c->path, nm, (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
        rows *= ne[i];
    }
    if (row_bytes && (uint64_t)rows > SIZE_MAX / row_bytes)
        return us_error_set(c->err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": dimensions [%lld, %lld, %lld, %lld] overflow a byte count", c->path,
                            nm, (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    size_t nbytes = (size_t)rows * row_bytes;
    if (c->fill) {
        t->name = name.s;
        t->n_dims = (int)n_dims;
        memcpy(t->ne, ne, sizeof ne);
        t->type = type;
        t->offset = offset;
        t->nbytes = nbytes;
        t->n_rows = rows;
        t->row_bytes = row_bytes;
    }
    return US_OK;
}

/* Offsets are checked once the data section's start is known (after all infos). */
static us_status check_tensor_data(const us_gguf *g, us_gguf_tensor *t, us_error *err)
{
    uint64_t data_size = g->data_offset <= g->map_size ? g->map_size - g->data_offset : 0;
    if (t->offset % g->alignment != 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\": offset %llu is not a multiple of the alignment %u",
                            g->path, t->name, (unsigned long long)t->offset, (unsigned)g->alignment);
    if (t->offset > data_size || t->nbytes > data_size - t->offset)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: tensor \"%s\": data [%llu, +%zu) lies outside the %llu-byte data section "
                            "(truncated file?)",
                            g->path, t->name, (unsigned long long)t->offset, t->nbytes,
                            (unsigned long long)data_size);
    t->data = (const uint8_t *)g->map + g->data_offset + t->offset;
    return US_OK;
}

/* ---- the two walks ------------------------------------------------------------------------ */

/* Header fields already read; walks the kvs and the tensor infos. */
static us_status walk(us_gguf *g, cursor *c)
{
    c->pos = GGUF_HEADER_BYTES;
    g->alignment = US_GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < g->n_kv; i++) {
        us_status s = rd_kv(c, c->fill ? &g->kvs[i] : NULL, &g->alignment);
        if (s) return s;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        us_status s = rd_tensor(c, c->fill ? &g->tensors[i] : NULL, i);
        if (s) return s;
    }
    uint64_t end = c->pos, a = g->alignment;
    g->data_offset = end % a ? end + (a - end % a) : end;
    return US_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const us_gguf_kv *const *)a)->key, (*(const us_gguf_kv *const *)b)->key);
}
static int cmp_kv_key(const void *k, const void *e) { return strcmp(k, (*(const us_gguf_kv *const *)e)->key); }
static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const us_gguf_tensor *const *)a)->name, (*(const us_gguf_tensor *const *)b)->name);
}
static int cmp_tensor_key(const void *k, const void *e)
{
    return strcmp(k, (*(const us_gguf_tensor *const *)e)->name);
}

static us_status parse(us_gguf *g, us_error *err)
{
    const uint8_t *b = g->map;
    const char *path = g->path;
    if (memcmp(b, "GGUF", 4) != 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file",
                            path, b[0], b[1], b[2], b[3]);
    g->version = (uint32_t)le(b + 4, 4);
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1)
            return us_error_set(err, US_ERR_FORMAT, "%s: GGUF version 1 is not supported (only 2 and 3)", path);
        if ((g->version & 0xFFFF) == 0)
            return us_error_set(err, US_ERR_FORMAT, "%s: big-endian GGUF (version field %08x) is not supported",
                                path, (unsigned)g->version);
        return us_error_set(err, US_ERR_FORMAT, "%s: unknown GGUF version %u", path, (unsigned)g->version);
    }
    uint64_t nt = le(b + 8, 8), nkv = le(b + 16, 8);
    uint64_t room = g->map_size - GGUF_HEADER_BYTES;
    if (nkv > room / GGUF_MIN_KV_BYTES)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: absurd metadata count %llu: the %llu bytes after the header hold at most %llu",
                            path, (unsigned long long)nkv, (unsigned long long)room,
                            (unsigned long long)(room / GGUF_MIN_KV_BYTES));
    if (nt > room / GGUF_MIN_TENSOR_BYTES)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: absurd tensor count %llu: the %llu bytes after the header hold at most %llu", path,
                            (unsigned long long)nt, (unsigned long long)room,
                            (unsigned long long)(room / GGUF_MIN_TENSOR_BYTES));
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;

    cursor c = {.b = b, .size = g->map_size, .path = path, .err = err};
    us_status s = walk(g, &c);
    if (s) return s;

    /* Everything counted below is backed by bytes of the file. */
    g->kvs = calloc((size_t)nkv + 1, sizeof *g->kvs);
    g->kv_sorted = calloc((size_t)nkv + 1, sizeof *g->kv_sorted);
    g->tensors = calloc((size_t)nt + 1, sizeof *g->tensors);
    g->tensor_sorted = calloc((size_t)nt + 1, sizeof *g->tensor_sorted);
    g->strs = calloc((size_t)c.strs_need + 1, sizeof *g->strs);
    g->arena = malloc((size_t)c.arena_need + 1);
    if (!g->kvs || !g->kv_sorted || !g->tensors || !g->tensor_sorted || !g->strs || !g->arena)
        return us_error_set(err, US_ERR_NOMEM, "%s: out of memory for the header (%llu bytes of strings)", path,
                            (unsigned long long)c.arena_need);
    c.fill = 1;
    c.arena = g->arena;
    c.strs = g->strs;
    if ((s = walk(g, &c))) return s;

    for (int64_t i = 0; i < g->n_kv; i++) g->kv_sorted[i] = &g->kvs[i];
    qsort(g->kv_sorted, (size_t)nkv, sizeof *g->kv_sorted, cmp_kv);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0)
            return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" appears twice", path,
                                g->kv_sorted[i]->key);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        if ((s = check_tensor_data(g, &g->tensors[i], err))) return s;
        g->tensor_sorted[i] = &g->tensors[i];
    }
    qsort(g->tensor_sorted, (size_t)nt, sizeof *g->tensor_sorted, cmp_tensor);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensor_sorted[i - 1]->name, g->tensor_sorted[i]->name) == 0)
            return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" appears twice", path,
                                g->tensor_sorted[i]->name);
    return US_OK;
}

us_status us_gguf_open(const char *path, us_gguf **out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return us_error_set(err, US_ERR_INVALID, "us_gguf_open: path is NULL");
    char what[64];
    snprintf(what, sizeof what, "the %u-byte GGUF header", GGUF_HEADER_BYTES);
    us_mapped_file mf;
    us_status ms = us_mapped_file_open(path, GGUF_HEADER_BYTES, what, &mf, err);
    if (ms) return ms;
    void *map = mf.data;
    size_t size = mf.size;
    us_gguf *g = calloc(1, sizeof *g);
    char *pc = strdup(path);
    if (!g || !pc) {
        free(g);
        free(pc);
        munmap(map, size);
        return us_error_set(err, US_ERR_NOMEM, "%s: out of memory", path);
    }
    g->path = pc;
    g->map = map;
    g->map_size = size;
    us_status s = parse(g, err);
    if (s) {
        us_gguf_close(&g);
        return s;
    }
    *out = g;
    return US_OK;
}

void us_gguf_close(us_gguf **gp)
{
    if (!gp || !*gp) return;
    us_gguf *g = *gp;
    free(g->kvs);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->tensor_sorted);
    free(g->strs);
    free(g->arena);
    if (g->map) munmap(g->map, g->map_size);
    free(g->path);
    free(g);
    *gp = NULL;
}

/* ---- accessors -------------------------------------------------------------------------------- */

const char *us_gguf_path(const us_gguf *g) { return g ? g->path : NULL; }
uint32_t us_gguf_version(const us_gguf *g) { return g ? g->version : 0; }
uint32_t us_gguf_alignment(const us_gguf *g) { return g ? g->alignment : 0; }
uint64_t us_gguf_data_offset(const us_gguf *g) { return g ? g->data_offset : 0; }
int64_t us_gguf_kv_count(const us_gguf *g) { return g ? g->n_kv : 0; }
int64_t us_gguf_tensor_count(const us_gguf *g) { return g ? g->n_tensors : 0; }

const us_gguf_kv *us_gguf_kv_at(const us_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL;
}

const us_gguf_kv *us_gguf_find_kv(const us_gguf *g, const char *key)
{
    if (!g || !key || g->n_kv == 0) return NULL;
    const us_gguf_kv *const *hit = bsearch(key, g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv_key);
    return hit ? *hit : NULL;
}

const us_gguf_tensor *us_gguf_tensor_at(const us_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const us_gguf_tensor *us_gguf_find_tensor(const us_gguf *g, const char *name)
{
    if (!g || !name || g->n_tensors == 0) return NULL;
    const us_gguf_tensor *const *hit =
        bsearch(name, g->tensor_sorted, (size_t)g->n_tensors, sizeof *g->tensor_sorted, cmp_tensor_key);
    return hit ? *hit : NULL;
}

int us_gguf_kv_int(const us_gguf_kv *kv, uint64_t i, int64_t *out)
{
    if (!kv || i >= kv->count || kv->elem_type == US_GGUF_STRING) return -1;
    size_t es = value_size(kv->elem_type);
    const uint8_t *p = (const uint8_t *)kv->raw + i * es;
    uint64_t u = le(p, (int)es);
    switch (kv->elem_type) {
    case US_GGUF_UINT8: case US_GGUF_UINT16: case US_GGUF_UINT32: case US_GGUF_BOOL:
        *out = (int64_t)u;
        return 0;
    case US_GGUF_UINT64:
        if (u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)u;
        return 0;
    case US_GGUF_INT8: *out = (int8_t)u; return 0;
    case US_GGUF_INT16: *out = (int16_t)u; return 0;
    case US_GGUF_INT32: *out = (int32_t)u; return 0;
    case US_GGUF_INT64: *out = (int64_t)u; return 0;
    default: return -1;
    }
}

int us_gguf_kv_float(const us_gguf_kv *kv, uint64_t i, double *out)
{
    if (!kv || i >= kv->count || kv->elem_type == US_GGUF_STRING || kv->elem_type == US_GGUF_BOOL) return -1;
    const uint8_t *p = (const uint8_t *)kv->raw + i * value_size(kv->elem_type);
    if (kv->elem_type == US_GGUF_FLOAT32) {
        uint32_t u = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return 0;
    }
    if (kv->elem_type == US_GGUF_FLOAT64) {
        uint64_t u = le(p, 8);
        memcpy(out, &u, 8);
        return 0;
    }
    if (kv->elem_type == US_GGUF_UINT64) {
        *out = (double)le(p, 8);
        return 0;
    }
    int64_t v;
    if (us_gguf_kv_int(kv, i, &v) != 0) return -1;
    *out = (double)v;
    return 0;
}

const us_gguf_str *us_gguf_kv_str(const us_gguf_kv *kv, uint64_t i)
{
    return kv && kv->elem_type == US_GGUF_STRING && i < kv->count ? &kv->strs[i] : NULL;
}

static us_status find_scalar(const us_gguf *g, const char *key, const char *want, const us_gguf_kv **kv,
                             us_error *err)
{
    if (!g || !key) return us_error_set(err, US_ERR_INVALID, "us_gguf_get: NULL file or key");
    *kv = us_gguf_find_kv(g, key);
    if (!*kv) return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is missing", g->path, key);
    if ((*kv)->type == US_GGUF_ARRAY)
        return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is an array of %llu %s, not %s", g->path,
                            key, (unsigned long long)(*kv)->count, us_gguf_type_name((*kv)->elem_type), want);
    return US_OK;
}

us_status us_gguf_get_int(const us_gguf *g, const char *key, int64_t *out, us_error *err)
{
    const us_gguf_kv *kv = NULL;
    us_status s = find_scalar(g, key, "an integer", &kv, err);
    if (s) return s;
    if (us_gguf_kv_int(kv, 0, out) != 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is %s, not an integer in int64 range",
                            g->path, key, us_gguf_type_name(kv->type));
    return US_OK;
}

us_status us_gguf_get_float(const us_gguf *g, const char *key, double *out, us_error *err)
{
    const us_gguf_kv *kv = NULL;
    us_status s = find_scalar(g, key, "a number", &kv, err);
    if (s) return s;
    if (us_gguf_kv_float(kv, 0, out) != 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is %s, not a number", g->path, key,
                            us_gguf_type_name(kv->type));
    return US_OK;
}

us_status us_gguf_get_string(const us_gguf *g, const char *key, const char **out, us_error *err)
{
    const us_gguf_kv *kv = NULL;
    us_status s = find_scalar(g, key, "a string", &kv, err);
    if (s) return s;
    if (kv->type != US_GGUF_STRING)
        return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is %s, not a string", g->path, key,
                            us_gguf_type_name(kv->type));
    *out = kv->strs[0].s;
    return US_OK;
}

us_status us_gguf_get_array(const us_gguf *g, const char *key, const us_gguf_kv **out, us_error *err)
{
    if (!g || !key) return us_error_set(err, US_ERR_INVALID, "us_gguf_get_array: NULL file or key");
    const us_gguf_kv *kv = us_gguf_find_kv(g, key);
    if (!kv) return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is missing", g->path, key);
    if (kv->type != US_GGUF_ARRAY)
        return us_error_set(err, US_ERR_FORMAT, "%s: metadata key \"%s\" is %s, not an array", g->path, key,
                            us_gguf_type_name(kv->type));
    *out = kv;
    return US_OK;
}

us_status us_gguf_tensor_row(const us_gguf *g, const us_gguf_tensor *t, int64_t r, float *dst, us_error *err)
{
    if (!g || !t || !dst) return us_error_set(err, US_ERR_INVALID, "us_gguf_tensor_row: NULL argument");
    if (r < 0 || r >= t->n_rows)
        return us_error_set(err, US_ERR_INVALID, "%s: tensor \"%s\": row %lld is outside 0..%lld", g->path, t->name,
                            (long long)r, (long long)t->n_rows - 1);
    us_status s = us_ggml_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * t->row_bytes, dst, t->ne[0],
                                         err);
    if (s && err) {
        char why[sizeof err->msg];
        memcpy(why, err->msg, sizeof why);
        us_error_set(err, s, "%s: tensor \"%s\": %s", g->path, t->name, why);
    }
    return s;
}
