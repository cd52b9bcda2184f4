/* test_gguf.c: the GGUF reader (formats/gguf.c) and the ggml dequantisers (formats/ggml_quant.c).
 *
 * (a) Synthetic files built byte by byte here, holding every metadata value type and tensors in
 *     F32, F16 and Q8_0, read back completely; Q5_0, Q4_K and Q6_K blocks packed here from the
 *     documented layouts, with values chosen so the expected floats are exact.
 * (b) Malformed files: every one must fail with US_ERR_FORMAT (or US_ERR_IO) and a message naming
 *     the file; every proper prefix of a good file must fail too.
 * (c) The real Gemma 3 270M Q4_K_M file, when scripts/fetch-gemma3-270m.sh has put it in
 *     models/: metadata, tensor infos and dequantised rows against assets/gguf/, which
 *     scripts/make-gguf-fixtures.py wrote with the `gguf` Python package. Skipped, saying so,
 *     when the model is absent. */
#include "gguf.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/us_gguf_test_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    DIR *d = opendir(g_dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_dir);
}

TestSuite(gguf, .init = setup, .fini = teardown);
TestSuite(gguf_bad, .init = setup, .fini = teardown);
TestSuite(ggml_quant);
TestSuite(gemma3_270m);

/* ---- a byte builder --------------------------------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        cr_assert_not_null(w->b);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void le_n(buf *w, uint64_t v, int n)
{
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    put(w, t, (size_t)n);
}
static void u8(buf *w, uint8_t v) { le_n(w, v, 1); }
static void u16(buf *w, uint16_t v) { le_n(w, v, 2); }
static void u32(buf *w, uint32_t v) { le_n(w, v, 4); }
static void u64(buf *w, uint64_t v) { le_n(w, v, 8); }
static void f32(buf *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u32(w, u);
}
static void f64(buf *w, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    u64(w, u);
}
static void str(buf *w, const char *s)
{
    u64(w, strlen(s));
    put(w, s, strlen(s));
}
static void header(buf *w, uint32_t version, uint64_t nt, uint64_t nkv)
{
    put(w, "GGUF", 4);
    u32(w, version);
    u64(w, nt);
    u64(w, nkv);
}
static void kv(buf *w, const char *key, uint32_t type)
{
    str(w, key);
    u32(w, type);
}
static void tinfo(buf *w, const char *name, int n_dims, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    str(w, name);
    u32(w, (uint32_t)n_dims);
    for (int i = 0; i < n_dims; i++) u64(w, ne[i]);
    u32(w, type);
    u64(w, offset);
}
static void pad(buf *w, size_t a)
{
    while (w->n % a) u8(w, 0);
}

static void tpath(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* ---- the synthetic good file ------------------------------------------------------------------ */

#define N_KV_BASE 16
static const uint16_t k_f16_bits[8] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0000, 0x8000, 0x0001, 0x3555};
static const float k_f16_vals[8] = {1.0f, -2.0f, 0.5f, 65504.0f, 0.0f, -0.0f, 5.9604644775390625e-8f,
                                    0.333251953125f};

static float f32_val(int i) { return (float)i * 0.5f - 1.0f; }
static float q8_d(int blk) { return 0.25f * (float)(blk % 4 + 1); }
static int8_t q8_q(int blk, int j) { return (int8_t)((j * 8 + blk * 3) % 256 - 128); }

/* Version v; alignment 0 = no general.alignment key (default 32). */
static buf make_good(uint32_t version, uint32_t alignment)
{
    buf w = {0};
    size_t a = alignment ? alignment : 32;
    header(&w, version, 3, N_KV_BASE + (alignment ? 1 : 0));
    kv(&w, "t.u8", 0), u8(&w, 200);
    kv(&w, "t.i8", 1), u8(&w, (uint8_t)(int8_t)-100);
    kv(&w, "t.u16", 2), u16(&w, 60000);
    kv(&w, "t.i16", 3), u16(&w, (uint16_t)(int16_t)-30000);
    kv(&w, "t.u32", 4), u32(&w, 4000000000u);
    kv(&w, "t.i32", 5), u32(&w, (uint32_t)(int32_t)-2000000000);
    kv(&w, "t.f32", 6), f32(&w, 1.5f);
    kv(&w, "t.bool", 7), u8(&w, 1);
    kv(&w, "t.str", 8), str(&w, "hello gguf");
    kv(&w, "t.u64", 10), u64(&w, (1ull << 63) + 5);
    kv(&w, "t.i64", 11), u64(&w, (uint64_t)-(INT64_C(1) << 40));
    kv(&w, "t.f64", 12), f64(&w, -0.125);
    kv(&w, "t.arr.i32", 9), u32(&w, 5), u64(&w, 3), u32(&w, 1), u32(&w, (uint32_t)-2), u32(&w, 3);
    kv(&w, "t.arr.str", 9), u32(&w, 8), u64(&w, 3), str(&w, "a"), str(&w, ""), str(&w, "ccc");
    kv(&w, "t.arr.f32", 9), u32(&w, 6), u64(&w, 2), f32(&w, 0.5f), f32(&w, -1.0f);
    kv(&w, "t.arr.empty", 9), u32(&w, 0), u64(&w, 0);
    if (alignment) kv(&w, "general.alignment", 4), u32(&w, alignment);

    /* f32 [4, 2] (32 bytes), f16 [8] (16 bytes), q8 [64, 2] (4 blocks, 136 bytes) */
    uint64_t off_f16 = 32, off_q8 = 32 + 16;
    off_f16 = (off_f16 + a - 1) / a * a;
    off_q8 = ((off_f16 + 16) + a - 1) / a * a;
    tinfo(&w, "f32", 2, (uint64_t[]){4, 2}, US_GGML_F32, 0);
    tinfo(&w, "f16", 1, (uint64_t[]){8}, US_GGML_F16, off_f16);
    tinfo(&w, "q8", 2, (uint64_t[]){64, 2}, US_GGML_Q8_0, off_q8);
    pad(&w, a);
    size_t data = w.n;
    for (int i = 0; i < 8; i++) f32(&w, f32_val(i));
    while (w.n < data + off_f16) u8(&w, 0);
    for (int i = 0; i < 8; i++) u16(&w, k_f16_bits[i]);
    while (w.n < data + off_q8) u8(&w, 0);
    for (int blk = 0; blk < 4; blk++) {
        u16(&w, us_f32_to_f16(q8_d(blk)));
        for (int j = 0; j < 32; j++) u8(&w, (uint8_t)q8_q(blk, j));
    }
    return w;
}

static us_gguf *open_ok(const char *path)
{
    us_gguf *g = NULL;
    us_error err = {0};
    us_status s = us_gguf_open(path, &g, &err);
    cr_assert_eq(s, US_OK, "open %s: %s", path, err.msg);
    cr_assert_not_null(g);
    return g;
}

static void check_good(const char *path, uint32_t version, uint32_t alignment)
{
    us_gguf *g = open_ok(path);
    us_error err = {0};
    uint32_t a = alignment ? alignment : 32;
    cr_expect_eq(us_gguf_version(g), version);
    cr_expect_eq(us_gguf_alignment(g), a);
    cr_expect_eq(us_gguf_data_offset(g) % a, 0);
    cr_expect_str_eq(us_gguf_path(g), path);
    cr_assert_eq(us_gguf_kv_count(g), N_KV_BASE + (alignment ? 1 : 0));
    cr_expect_str_eq(us_gguf_kv_at(g, 0)->key, "t.u8");
    cr_expect_str_eq(us_gguf_kv_at(g, 15)->key, "t.arr.empty");

    static const struct {
        const char *key;
        us_gguf_type type;
        int64_t v;
    } ints[] = {{"t.u8", US_GGUF_UINT8, 200},        {"t.i8", US_GGUF_INT8, -100},
                {"t.u16", US_GGUF_UINT16, 60000},    {"t.i16", US_GGUF_INT16, -30000},
                {"t.u32", US_GGUF_UINT32, 4000000000}, {"t.i32", US_GGUF_INT32, -2000000000},
                {"t.bool", US_GGUF_BOOL, 1},         {"t.i64", US_GGUF_INT64, -(INT64_C(1) << 40)}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = 0;
        cr_expect_eq(us_gguf_get_int(g, ints[i].key, &v, &err), US_OK, "%s: %s", ints[i].key, err.msg);
        cr_expect_eq(v, ints[i].v, "%s: %lld", ints[i].key, (long long)v);
        const us_gguf_kv *k = us_gguf_find_kv(g, ints[i].key);
        cr_assert_not_null(k);
        cr_expect_eq(k->type, ints[i].type);
        cr_expect_eq(k->elem_type, ints[i].type);
        cr_expect_eq(k->count, 1);
        if (ints[i].type != US_GGUF_BOOL) {
            double d = 0;
            cr_expect_eq(us_gguf_get_float(g, ints[i].key, &d, &err), US_OK);
            cr_expect_eq(d, (double)ints[i].v);
        }
    }
    double d = 0;
    cr_expect_eq(us_gguf_get_float(g, "t.f32", &d, &err), US_OK);
    cr_expect_eq(d, 1.5);
    cr_expect_eq(us_gguf_get_float(g, "t.f64", &d, &err), US_OK);
    cr_expect_eq(d, -0.125);
    cr_expect_eq(us_gguf_get_float(g, "t.u64", &d, &err), US_OK);
    cr_expect_eq(d, 9223372036854775808.0);
    int64_t v = 0;
    /* 2^63 + 5 does not fit in an int64 */
    cr_expect_eq(us_gguf_get_int(g, "t.u64", &v, &err), US_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "t.u64"), "%s", err.msg);
    const char *s = NULL;
    cr_expect_eq(us_gguf_get_string(g, "t.str", &s, &err), US_OK);
    cr_expect_str_eq(s, "hello gguf");
    cr_expect_eq(us_gguf_find_kv(g, "t.str")->strs[0].len, 10);

    /* wrong kinds and missing keys name the file and the key */
    cr_expect_eq(us_gguf_get_int(g, "t.str", &v, &err), US_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "t.str"), "%s", err.msg);
    cr_expect_eq(us_gguf_get_string(g, "t.u8", &s, &err), US_ERR_FORMAT);
    cr_expect_eq(us_gguf_get_float(g, "t.bool", &d, &err), US_ERR_FORMAT);
    cr_expect_eq(us_gguf_get_int(g, "t.arr.i32", &v, &err), US_ERR_FORMAT);
    cr_expect(strstr(err.msg, "array"), "%s", err.msg);
    cr_expect_eq(us_gguf_get_int(g, "no.such.key", &v, &err), US_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "no.such.key"), "%s", err.msg);
    cr_expect_null(us_gguf_find_kv(g, "t"));

    const us_gguf_kv *arr = NULL;
    cr_assert_eq(us_gguf_get_array(g, "t.arr.i32", &arr, &err), US_OK);
    cr_expect_eq(arr->type, US_GGUF_ARRAY);
    cr_expect_eq(arr->elem_type, US_GGUF_INT32);
    cr_assert_eq(arr->count, 3);
    int64_t want_i[3] = {1, -2, 3};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(us_gguf_kv_int(arr, (uint64_t)i, &v), 0);
        cr_expect_eq(v, want_i[i]);
    }
    cr_expect_eq(us_gguf_kv_int(arr, 3, &v), -1);
    cr_assert_eq(us_gguf_get_array(g, "t.arr.str", &arr, &err), US_OK);
    cr_assert_eq(arr->count, 3);
    cr_expect_str_eq(us_gguf_kv_str(arr, 0)->s, "a");
    cr_expect_eq(us_gguf_kv_str(arr, 1)->len, 0);
    cr_expect_str_eq(us_gguf_kv_str(arr, 1)->s, "");
    cr_expect_str_eq(us_gguf_kv_str(arr, 2)->s, "ccc");
    cr_expect_null(us_gguf_kv_str(arr, 3));
    cr_expect_eq(us_gguf_kv_int(arr, 0, &v), -1);
    cr_assert_eq(us_gguf_get_array(g, "t.arr.f32", &arr, &err), US_OK);
    cr_expect_eq(us_gguf_kv_float(arr, 0, &d), 0);
    cr_expect_eq(d, 0.5);
    cr_expect_eq(us_gguf_kv_float(arr, 1, &d), 0);
    cr_expect_eq(d, -1.0);
    cr_assert_eq(us_gguf_get_array(g, "t.arr.empty", &arr, &err), US_OK);
    cr_expect_eq(arr->count, 0);
    cr_expect_eq(arr->elem_type, US_GGUF_UINT8);
    cr_expect_eq(us_gguf_get_array(g, "t.u8", &arr, &err), US_ERR_FORMAT);

    /* tensors */
    cr_assert_eq(us_gguf_tensor_count(g), 3);
    const us_gguf_tensor *t = us_gguf_tensor_at(g, 0);
    cr_expect_str_eq(t->name, "f32");
    cr_expect_eq(t->n_dims, 2);
    cr_expect(t->ne[0] == 4 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 1);
    cr_expect_eq(t->type, US_GGML_F32);
    cr_expect_eq(t->offset, 0);
    cr_expect_eq(t->nbytes, 32);
    cr_expect_eq(t->n_rows, 2);
    cr_expect_eq(t->row_bytes, 16);
    float row[64];
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(us_gguf_tensor_row(g, t, r, row, &err), US_OK, "%s", err.msg);
        for (int i = 0; i < 4; i++) cr_expect_eq(row[i], f32_val(4 * r + i));
    }
    cr_expect_eq(us_gguf_tensor_row(g, t, 2, row, &err), US_ERR_INVALID);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "f32"), "%s", err.msg);

    t = us_gguf_find_tensor(g, "f16");
    cr_assert_not_null(t);
    cr_expect_eq(t, us_gguf_tensor_at(g, 1));
    cr_expect_eq(t->offset % a, 0);
    cr_expect_eq(t->n_dims, 1);
    cr_expect_eq(t->n_rows, 1);
    cr_assert_eq(us_gguf_tensor_row(g, t, 0, row, &err), US_OK, "%s", err.msg);
    for (int i = 0; i < 8; i++) cr_expect_eq(row[i], k_f16_vals[i], "f16[%d] = %g", i, row[i]);
    cr_expect(signbit(row[5]));

    t = us_gguf_find_tensor(g, "q8");
    cr_assert_not_null(t);
    cr_expect_eq(t->type, US_GGML_Q8_0);
    cr_expect_eq(t->nbytes, 4 * 34);
    cr_expect_eq(t->row_bytes, 2 * 34);
    cr_expect_eq((const uint8_t *)t->data - (const uint8_t *)us_gguf_tensor_at(g, 0)->data, (ptrdiff_t)t->offset);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(us_gguf_tensor_row(g, t, r, row, &err), US_OK, "%s", err.msg);
        for (int i = 0; i < 64; i++) {
            int blk = 2 * r + i / 32;
            cr_expect_eq(row[i], q8_d(blk) * (float)q8_q(blk, i % 32), "q8 row %d [%d] = %g", r, i, row[i]);
        }
    }
    cr_expect_null(us_gguf_find_tensor(g, "q"));
    cr_expect_null(us_gguf_find_tensor(g, "q80"));
    us_gguf_close(&g);
    cr_expect_null(g);
    us_gguf_close(&g); /* closing NULL is fine */
}

Test(gguf, every_value_type_and_tensor_v3)
{
    char p[256];
    tpath(p, sizeof p, "good3.gguf");
    buf w = make_good(3, 0);
    write_file(p, w.b, w.n);
    free(w.b);
    check_good(p, 3, 0);
}

Test(gguf, version_2_and_custom_alignment)
{
    char p[256];
    tpath(p, sizeof p, "good2.gguf");
    buf w = make_good(2, 64);
    write_file(p, w.b, w.n);
    free(w.b);
    check_good(p, 2, 64);
    tpath(p, sizeof p, "good3a8.gguf");
    w = make_good(3, 8);
    write_file(p, w.b, w.n);
    free(w.b);
    check_good(p, 3, 8);
}

Test(gguf, empty_file_with_no_tensors_or_keys)
{
    char p[256];
    tpath(p, sizeof p, "empty.gguf");
    buf w = {0};
    header(&w, 3, 0, 0);
    write_file(p, w.b, w.n);
    free(w.b);
    us_gguf *g = open_ok(p);
    cr_expect_eq(us_gguf_kv_count(g), 0);
    cr_expect_eq(us_gguf_tensor_count(g), 0);
    cr_expect_null(us_gguf_find_kv(g, "x"));
    cr_expect_null(us_gguf_find_tensor(g, "x"));
    us_gguf_close(&g);
}

/* ---- malformed files -------------------------------------------------------------------------- */

static void expect_bad_file(const char *path, us_status want, const char *needle)
{
    us_gguf *g = (us_gguf *)&g; /* must be reset to NULL */
    us_error err = {0};
    us_status s = us_gguf_open(path, &g, &err);
    cr_expect_eq(s, want, "%s: got %d (%s), want %d", path, s, err.msg, want);
    cr_expect_null(g);
    cr_expect(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    if (needle) cr_expect(strstr(err.msg, needle) != NULL, "message lacks \"%s\": %s", needle, err.msg);
    if (s == US_OK) us_gguf_close(&g);
}

static void expect_bad(buf *w, const char *name, const char *needle)
{
    char p[256];
    tpath(p, sizeof p, name);
    write_file(p, w->b, w->n);
    free(w->b);
    *w = (buf){0};
    expect_bad_file(p, US_ERR_FORMAT, needle);
}

Test(gguf_bad, missing_file_and_directory)
{
    char p[256];
    tpath(p, sizeof p, "nope.gguf");
    expect_bad_file(p, US_ERR_IO, "cannot open");
    expect_bad_file(g_dir, US_ERR_IO, "not a regular file");
}

Test(gguf_bad, every_truncation_of_a_good_file)
{
    buf w = make_good(3, 0);
    char p[256];
    tpath(p, sizeof p, "cut.gguf");
    for (size_t n = 0; n < w.n; n++) {
        write_file(p, w.b, n);
        us_gguf *g = NULL;
        us_error err = {0};
        us_status s = us_gguf_open(p, &g, &err);
        cr_assert_eq(s, US_ERR_FORMAT, "prefix of %zu of %zu bytes: got %d (%s)", n, w.n, s, err.msg);
        cr_assert(strstr(err.msg, p) != NULL, "%s", err.msg);
        cr_assert(strstr(err.msg, "truncated") || strstr(err.msg, "outside") || strstr(err.msg, "left in the file") ||
                      strstr(err.msg, "absurd"),
                  "prefix %zu: %s", n, err.msg);
    }
    free(w.b);
}

Test(gguf_bad, magic_and_version)
{
    buf w = {0};
    put(&w, "GGUX", 4), u32(&w, 3), u64(&w, 0), u64(&w, 0);
    expect_bad(&w, "magic.gguf", "magic");
    header(&w, 1, 0, 0);
    expect_bad(&w, "v1.gguf", "version 1");
    header(&w, 4, 0, 0);
    expect_bad(&w, "v4.gguf", "version 4");
    header(&w, 0x03000000u, 0, 0);
    expect_bad(&w, "be.gguf", "big-endian");
}

Test(gguf_bad, absurd_counts)
{
    buf w = {0};
    header(&w, 3, 0, UINT64_C(1) << 40);
    expect_bad(&w, "kvcount.gguf", "absurd metadata count");
    header(&w, 3, UINT64_MAX, 0);
    expect_bad(&w, "tcount.gguf", "absurd tensor count");
    /* plausible by the header alone, but the file holds fewer */
    header(&w, 3, 0, 3);
    kv(&w, "a", 0), u8(&w, 1);
    u64(&w, 0), u64(&w, 0), u64(&w, 0);
    expect_bad(&w, "kvshort.gguf", NULL);
}

Test(gguf_bad, absurd_string_lengths)
{
    buf w = {0};
    /* each file is long enough for its counts, so the length itself is what fails */
    header(&w, 3, 0, 1);
    u64(&w, UINT64_C(1) << 62), put(&w, "abcdefghijklmnop", 16);
    expect_bad(&w, "keylen.gguf", "length");
    header(&w, 3, 0, 1);
    kv(&w, "s", 8), u64(&w, UINT64_MAX), put(&w, "abcd", 4);
    expect_bad(&w, "strlen.gguf", "length");
    header(&w, 3, 1, 0);
    u64(&w, 1000), put(&w, "abcdefghijklmnopqrstuvwxyz012345", 32);
    expect_bad(&w, "namelen.gguf", "tensor name");
}

Test(gguf_bad, absurd_array_counts)
{
    buf w = {0};
    header(&w, 3, 0, 1);
    kv(&w, "a", 9), u32(&w, 4), u64(&w, UINT64_C(1) << 61), u32(&w, 7);
    expect_bad(&w, "arrcount.gguf", "cannot fit");
    header(&w, 3, 0, 1);
    kv(&w, "a", 9), u32(&w, 8), u64(&w, UINT64_C(1) << 40), str(&w, "x");
    expect_bad(&w, "strarr.gguf", "cannot fit");
    /* a count that fits the file's size but whose strings run off its end */
    header(&w, 3, 0, 1);
    kv(&w, "a", 9), u32(&w, 8), u64(&w, 3), str(&w, "x"), u64(&w, 1);
    expect_bad(&w, "strarr2.gguf", NULL);
}

Test(gguf_bad, unknown_value_types)
{
    buf w = {0};
    header(&w, 3, 0, 1);
    kv(&w, "k", 13), u32(&w, 0);
    expect_bad(&w, "vtype.gguf", "unknown value type 13");
    header(&w, 3, 0, 1);
    kv(&w, "k", 9), u32(&w, 99), u64(&w, 1), u32(&w, 0);
    expect_bad(&w, "etype.gguf", "unknown array element type 99");
    header(&w, 3, 0, 1);
    kv(&w, "k", 9), u32(&w, 9), u64(&w, 1), u32(&w, 0), u64(&w, 0);
    expect_bad(&w, "nested.gguf", "arrays of arrays");
    header(&w, 3, 0, 1);
    kv(&w, "k", 7), u8(&w, 2);
    expect_bad(&w, "bool.gguf", "bool");
}

Test(gguf_bad, keys)
{
    buf w = {0};
    header(&w, 3, 0, 2);
    kv(&w, "dup", 0), u8(&w, 1);
    kv(&w, "dup", 0), u8(&w, 2);
    expect_bad(&w, "dupkey.gguf", "appears twice");
    header(&w, 3, 0, 1);
    u64(&w, 3), put(&w, "a\0b", 3), u32(&w, 0), u8(&w, 1);
    expect_bad(&w, "nulkey.gguf", "NUL");
}

Test(gguf_bad, alignment)
{
    buf w = {0};
    header(&w, 3, 0, 1);
    kv(&w, "general.alignment", 4), u32(&w, 0);
    expect_bad(&w, "align0.gguf", "power of two");
    header(&w, 3, 0, 1);
    kv(&w, "general.alignment", 4), u32(&w, 48);
    expect_bad(&w, "align48.gguf", "power of two");
    header(&w, 3, 0, 1);
    kv(&w, "general.alignment", 10), u64(&w, 32);
    expect_bad(&w, "align64.gguf", "not uint32");
}

/* One tensor "t" with the given dims, type and offset, followed by `data` zero bytes. */
static void one_tensor(buf *w, int n_dims, const uint64_t *ne, uint32_t type, uint64_t offset, size_t data)
{
    header(w, 3, 1, 0);
    tinfo(w, "t", n_dims, ne, type, offset);
    pad(w, 32);
    for (size_t i = 0; i < data; i++) u8(w, 0);
}

Test(gguf_bad, tensor_types_and_dims)
{
    buf w = {0};
    one_tensor(&w, 1, (uint64_t[]){32}, 4, 0, 4096);
    expect_bad(&w, "type4.gguf", "unknown ggml type 4");
    one_tensor(&w, 1, (uint64_t[]){32}, 1000, 0, 4096);
    expect_bad(&w, "type1000.gguf", "unknown ggml type 1000");
    one_tensor(&w, 0, NULL, US_GGML_F32, 0, 64);
    expect_bad(&w, "dims0.gguf", "dimensions");
    one_tensor(&w, 5, (uint64_t[]){1, 1, 1, 1, 1}, US_GGML_F32, 0, 64);
    expect_bad(&w, "dims5.gguf", "dimensions");
    one_tensor(&w, 1, (uint64_t[]){31}, US_GGML_Q8_0, 0, 64);
    expect_bad(&w, "block.gguf", "block size");
    one_tensor(&w, 1, (uint64_t[]){UINT64_C(1) << 63}, US_GGML_F32, 0, 64);
    expect_bad(&w, "dimrange.gguf", "out of range");
    one_tensor(&w, 3, (uint64_t[]){32, UINT64_C(1) << 40, UINT64_C(1) << 40}, US_GGML_F32, 0, 64);
    expect_bad(&w, "dimover.gguf", "overflow");
    one_tensor(&w, 2, (uint64_t[]){UINT64_C(1) << 40, UINT64_C(1) << 30}, US_GGML_F32, 0, 64);
    expect_bad(&w, "byteover.gguf", "overflow");
    one_tensor(&w, 1, (uint64_t[]){INT64_MAX - 7}, US_GGML_F32, 0, 64);
    expect_bad(&w, "rowover.gguf", "overflow");
}

Test(gguf_bad, tensor_data_outside_the_file)
{
    buf w = {0};
    one_tensor(&w, 1, (uint64_t[]){16}, US_GGML_F32, 0, 63);
    expect_bad(&w, "short.gguf", "outside");
    one_tensor(&w, 1, (uint64_t[]){16}, US_GGML_F32, UINT64_C(1) << 40, 64);
    expect_bad(&w, "far.gguf", "outside");
    one_tensor(&w, 1, (uint64_t[]){16}, US_GGML_F32, UINT64_MAX - 31, 64);
    expect_bad(&w, "wrap.gguf", "outside");
    one_tensor(&w, 1, (uint64_t[]){8}, US_GGML_F32, 4, 64);
    expect_bad(&w, "misaligned.gguf", "alignment");
    /* a well-formed one for contrast */
    one_tensor(&w, 1, (uint64_t[]){16}, US_GGML_F32, 0, 64);
    char p[256];
    tpath(p, sizeof p, "fine.gguf");
    write_file(p, w.b, w.n);
    free(w.b);
    us_gguf *g = open_ok(p);
    us_gguf_close(&g);
}

Test(gguf_bad, duplicate_tensor)
{
    buf w = {0};
    header(&w, 3, 2, 0);
    tinfo(&w, "t", 1, (uint64_t[]){8}, US_GGML_F32, 0);
    tinfo(&w, "t", 1, (uint64_t[]){8}, US_GGML_F32, 32);
    pad(&w, 32);
    for (int i = 0; i < 64; i++) u8(&w, 0);
    expect_bad(&w, "duptensor.gguf", "appears twice");
}

/* ---- quantised blocks packed here from the documented layouts ---------------------------------- */

Test(ggml_quant, type_table)
{
    cr_expect_str_eq(us_ggml_type_name(US_GGML_Q4_K), "Q4_K");
    cr_expect_eq(us_ggml_block_size(US_GGML_Q6_K), 256);
    cr_expect_eq(us_ggml_block_bytes(US_GGML_Q6_K), 210);
    cr_expect_eq(us_ggml_block_bytes(US_GGML_Q5_0), 22);
    cr_expect_eq(us_ggml_block_bytes(US_GGML_Q4_K), 144);
    cr_expect_eq(us_ggml_block_bytes(US_GGML_Q8_0), 34);
    cr_expect_not(us_ggml_type_known(4));
    cr_expect_not(us_ggml_type_known(31));
    cr_expect_not(us_ggml_type_known(9999));
    size_t n = 0;
    cr_expect_eq(us_ggml_row_bytes(US_GGML_Q4_K, 1024, &n), 0);
    cr_expect_eq(n, 4 * 144);
    cr_expect_eq(us_ggml_row_bytes(US_GGML_Q4_K, 100, &n), -1);
    us_error err = {0};
    float y[32];
    uint8_t b[64] = {0};
    cr_expect_eq(us_ggml_dequantize_row(US_GGML_Q4_0, b, y, 32, &err), US_ERR_UNSUPPORTED);
    cr_expect_eq(us_ggml_dequantize_row(US_GGML_Q8_0, b, y, 31, &err), US_ERR_INVALID);
    cr_expect_eq(us_ggml_dequantize_row(4, b, y, 32, &err), US_ERR_INVALID);
}

Test(ggml_quant, bf16)
{
    const uint8_t b[6] = {0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40}; /* 1.0, -2.0, 3.140625 */
    float y[3];
    cr_assert_eq(us_ggml_dequantize_row(US_GGML_BF16, b, y, 3, NULL), US_OK);
    cr_expect(y[0] == 1.0f && y[1] == -2.0f && y[2] == 3.140625f, "%g %g %g", y[0], y[1], y[2]);
}

Test(ggml_quant, q5_0)
{
    /* d = 0.25; value j has 5-bit code q = (7j + 3) % 32: x = 0.25 * (q - 16) */
    uint8_t b[1 + 22] = {0};
    uint8_t *blk = b + 1; /* unaligned on purpose */
    int q[32];
    for (int j = 0; j < 32; j++) q[j] = (7 * j + 3) % 32;
    uint16_t d = us_f32_to_f16(0.25f);
    blk[0] = (uint8_t)d, blk[1] = (uint8_t)(d >> 8);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        blk[6 + j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
        qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    for (int i = 0; i < 4; i++) blk[2 + i] = (uint8_t)(qh >> (8 * i));
    float y[32];
    cr_assert_eq(us_ggml_dequantize_row(US_GGML_Q5_0, blk, y, 32, NULL), US_OK);
    for (int j = 0; j < 32; j++) cr_expect_eq(y[j], 0.25f * (float)(q[j] - 16), "[%d] %g", j, y[j]);
}

Test(ggml_quant, q4_k)
{
    /* d = 0.5, dmin = 0.25; sub-block i has scale 7i+1 and min 63-5i (6 bits each); value v has
     * 4-bit code (5v + 1) % 16: x = 0.5 * sc * q - 0.25 * m */
    uint8_t blk[144] = {0};
    int sc[8], m[8], q[256];
    for (int i = 0; i < 8; i++) sc[i] = 7 * i + 1, m[i] = 63 - 5 * i;
    for (int v = 0; v < 256; v++) q[v] = (5 * v + 1) % 16;
    uint16_t d = us_f32_to_f16(0.5f), dmin = us_f32_to_f16(0.25f);
    blk[0] = (uint8_t)d, blk[1] = (uint8_t)(d >> 8), blk[2] = (uint8_t)dmin, blk[3] = (uint8_t)(dmin >> 8);
    uint8_t *s = blk + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) blk[16 + 32 * g + l] = (uint8_t)(q[64 * g + l] | q[64 * g + 32 + l] << 4);
    float y[256];
    cr_assert_eq(us_ggml_dequantize_row(US_GGML_Q4_K, blk, y, 256, NULL), US_OK);
    for (int v = 0; v < 256; v++) {
        int i = v / 32;
        float want = 0.5f * (float)sc[i] * (float)q[v] - 0.25f * (float)m[i];
        cr_expect_eq(y[v], want, "[%d] %g vs %g", v, y[v], want);
    }
}

Test(ggml_quant, q6_k)
{
    /* d = 0.125; sub-block i (16 values) has signed scale 13i - 100; value v has 6-bit code
     * (11v + 5) % 64: x = 0.125 * sc * (q - 32) */
    uint8_t blk[210] = {0};
    int sc[16], q[256];
    for (int i = 0; i < 16; i++) sc[i] = 13 * i - 100;
    for (int v = 0; v < 256; v++) q[v] = (11 * v + 5) % 64;
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int v = 128 * h + 32 * k + l;
                uint8_t *lo = &blk[64 * h + 32 * (k & 1) + l];
                *lo = (uint8_t)(*lo | (k < 2 ? q[v] & 15 : (q[v] & 15) << 4));
                blk[128 + 32 * h + l] = (uint8_t)(blk[128 + 32 * h + l] | (q[v] >> 4) << (2 * k));
            }
    for (int i = 0; i < 16; i++) blk[192 + i] = (uint8_t)(int8_t)sc[i];
    uint16_t d = us_f32_to_f16(0.125f);
    blk[208] = (uint8_t)d, blk[209] = (uint8_t)(d >> 8);
    float y[256];
    cr_assert_eq(us_ggml_dequantize_row(US_GGML_Q6_K, blk, y, 256, NULL), US_OK);
    for (int v = 0; v < 256; v++) {
        float want = 0.125f * (float)sc[v / 16] * (float)(q[v] - 32);
        cr_expect_eq(y[v], want, "[%d] %g vs %g", v, y[v], want);
    }
}

/* ---- the real Gemma 3 270M file --------------------------------------------------------------- */

/* <assets>/<rel>: from $US_ASSETS (ctest sets it), else next to this source file. */
static void asset_path(char *out, size_t cap, const char *rel)
{
    const char *env = getenv("US_ASSETS");
    if (env && env[0]) {
        snprintf(out, cap, "%s/%s", env, rel);
        return;
    }
    const char *src = __FILE__;
    const char *tail = strstr(src, "tests/test_gguf.c");
    int root = tail ? (int)(tail - src) : 0;
    snprintf(out, cap, "%.*sassets/%s", root, src, rel);
}

/* The model's path, or skips the test saying how to get it. */
static void find_model(char *out, size_t cap)
{
    char pattern[1024];
    asset_path(pattern, sizeof pattern, "../models/gemma-3-270m*.gguf");
    glob_t gl;
    int rc = glob(pattern, 0, NULL, &gl);
    if (rc != 0 || gl.gl_pathc == 0) {
        if (rc == 0) globfree(&gl);
        cr_skip_test("Gemma 3 270M not present (%s): run scripts/fetch-gemma3-270m.sh to test against it",
                     pattern);
    }
    snprintf(out, cap, "%s", gl.gl_pathv[0]);
    globfree(&gl);
}

static cJSON *load_json(void)
{
    char p[1024];
    asset_path(p, sizeof p, "gguf/gemma3-270m.json");
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "cannot open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s: not valid JSON", p);
    return j;
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "fixture JSON lacks number \"%s\"", key);
    return v->valuedouble;
}

Test(gemma3_270m, header_and_metadata)
{
    char path[1024];
    find_model(path, sizeof path);
    cJSON *j = load_json();
    us_gguf *g = open_ok(path);
    us_error err = {0};
    cr_expect_eq(us_gguf_version(g), (uint32_t)jnum(j, "version"));
    cr_expect_eq(us_gguf_tensor_count(g), (int64_t)jnum(j, "tensor_count"));
    cr_expect_eq(us_gguf_kv_count(g), (int64_t)jnum(j, "kv_count"));
    cr_expect_eq(us_gguf_alignment(g), (uint32_t)jnum(j, "alignment"));
    cr_expect_eq(us_gguf_data_offset(g), (uint64_t)jnum(j, "data_offset"));

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    cr_assert(cJSON_IsObject(meta));
    int checked = 0;
    for (const cJSON *m = meta->child; m; m = m->next, checked++) {
        if (cJSON_IsString(m)) {
            const char *s = NULL;
            cr_expect_eq(us_gguf_get_string(g, m->string, &s, &err), US_OK, "%s", err.msg);
            if (s) cr_expect_str_eq(s, m->valuestring, "%s", m->string);
        } else if (cJSON_IsBool(m)) {
            int64_t v = -1;
            cr_expect_eq(us_gguf_get_int(g, m->string, &v, &err), US_OK, "%s", err.msg);
            cr_expect_eq(v, cJSON_IsTrue(m) ? 1 : 0, "%s", m->string);
        } else {
            double v = 0;
            cr_expect_eq(us_gguf_get_float(g, m->string, &v, &err), US_OK, "%s", err.msg);
            cr_expect(v == m->valuedouble || fabs(v - m->valuedouble) <= 1e-12 * fabs(m->valuedouble),
                      "%s: %.17g vs %.17g", m->string, v, m->valuedouble);
        }
    }
    cr_expect_geq(checked, 10);
    int64_t layers = 0;
    cr_expect_eq(us_gguf_get_int(g, "gemma3.block_count", &layers, &err), US_OK);
    cr_expect_eq(layers, 18);

    const us_gguf_kv *tok = NULL;
    cr_assert_eq(us_gguf_get_array(g, "tokenizer.ggml.tokens", &tok, &err), US_OK, "%s", err.msg);
    cr_expect_eq(tok->elem_type, US_GGUF_STRING);
    cr_expect_eq(tok->count, (uint64_t)jnum(j, "token_count"));
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(j, "tokens_first");
    uint64_t i = 0;
    for (const cJSON *t = first ? first->child : NULL; t; t = t->next, i++)
        cr_expect_str_eq(us_gguf_kv_str(tok, i)->s, t->valuestring);
    cr_expect_gt(i, 0);
    us_gguf_close(&g);
    cJSON_Delete(j);
}

Test(gemma3_270m, tensor_infos)
{
    char path[1024];
    find_model(path, sizeof path);
    cJSON *j = load_json();
    us_gguf *g = open_ok(path);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    cr_assert(cJSON_IsArray(list));
    cr_assert_eq(cJSON_GetArraySize(list), us_gguf_tensor_count(g));
    int64_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const us_gguf_tensor *t = us_gguf_find_tensor(g, name);
        cr_assert_not_null(t, "tensor %s not found", name);
        cr_expect_eq(t, us_gguf_tensor_at(g, i), "%s is not at index %lld", name, (long long)i);
        cr_expect_str_eq(us_ggml_type_name(t->type),
                         cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring, "%s", name);
        cr_expect_eq(t->offset, (uint64_t)jnum(e, "offset"), "%s", name);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cr_assert_eq(cJSON_GetArraySize(shape), t->n_dims, "%s", name);
        int d = 0;
        for (const cJSON *s = shape->child; s; s = s->next, d++)
            cr_expect_eq(t->ne[d], (int64_t)s->valuedouble, "%s ne[%d]", name, d);
    }
    us_gguf_close(&g);
    cJSON_Delete(j);
}

Test(gemma3_270m, rows_match_the_gguf_package)
{
    char path[1024], fix[1024];
    find_model(path, sizeof path);
    cJSON *j = load_json();
    us_gguf *g = open_ok(path);
    us_error err = {0};
    asset_path(fix, sizeof fix, "gguf/gemma3-270m-rows.safetensors");
    us_safetensors *st = NULL;
    cr_assert_eq(us_safetensors_open(fix, &st, &err), US_OK, "%s", err.msg);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "row_fixtures");
    cr_assert(cJSON_IsArray(list));
    int n_types = 0;
    for (const cJSON *e = list->child; e; e = e->next, n_types++) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const us_gguf_tensor *t = us_gguf_find_tensor(g, name);
        const us_st_tensor *ref = us_safetensors_find(st, name);
        cr_assert(t && ref, "%s missing from the model or the fixture", name);
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(e, "rows");
        int64_t ne0 = t->ne[0];
        cr_assert(ref->ndim == 2 && ref->shape[0] == cJSON_GetArraySize(rows) && ref->shape[1] == ne0, "%s", name);
        const float *want = ref->data;
        float *got = malloc((size_t)ne0 * sizeof *got);
        cr_assert_not_null(got);
        double scale = 0, max_err = 0;
        int k = 0;
        for (const cJSON *r = rows->child; r; r = r->next, k++) {
            cr_assert_eq(us_gguf_tensor_row(g, t, (int64_t)r->valuedouble, got, &err), US_OK, "%s", err.msg);
            for (int64_t i = 0; i < ne0; i++) {
                float w = want[(size_t)k * (size_t)ne0 + (size_t)i];
                scale = fmax(scale, fabs(w));
                max_err = fmax(max_err, fabs((double)got[i] - w));
            }
        }
        free(got);
        cr_log_info("%-26s %-5s rows %d x %lld: max |ours - gguf| = %.3g, value scale %.3g", name,
                    us_ggml_type_name(t->type), k, (long long)ne0, max_err, scale);
        cr_expect(scale > 0, "%s: fixture rows are all zero", name);
        cr_expect(max_err <= 1e-6 * scale, "%s (%s): max error %.3g exceeds 1e-6 x scale %.3g", name,
                  us_ggml_type_name(t->type), max_err, scale);
    }
    cr_expect_geq(n_types, 5);
    us_safetensors_close(&st);
    us_gguf_close(&g);
    cJSON_Delete(j);
}

Test(gemma3_270m, every_tensor_dequantises_to_finite_values)
{
    char path[1024];
    find_model(path, sizeof path);
    us_gguf *g = open_ok(path);
    us_error err = {0};
    float *row = malloc(1 << 20);
    cr_assert_not_null(row);
    int64_t values = 0;
    for (int64_t i = 0; i < us_gguf_tensor_count(g); i++) {
        const us_gguf_tensor *t = us_gguf_tensor_at(g, i);
        cr_assert(us_ggml_can_dequantize(t->type), "%s: no dequantiser for %s", t->name, us_ggml_type_name(t->type));
        cr_assert_leq(t->ne[0], (1 << 20) / 4);
        for (int64_t r = 0; r < t->n_rows; r++) {
            cr_assert_eq(us_gguf_tensor_row(g, t, r, row, &err), US_OK, "%s", err.msg);
            for (int64_t k = 0; k < t->ne[0]; k++)
                if (!isfinite(row[k])) cr_assert_fail("%s row %lld [%lld] = %g", t->name, (long long)r, (long long)k, row[k]);
            values += t->ne[0];
        }
    }
    cr_log_info("dequantised %lld values in %lld tensors", (long long)values, (long long)us_gguf_tensor_count(g));
    free(row);
    us_gguf_close(&g);
}
