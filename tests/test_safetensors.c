/* test_safetensors.c: the safetensors reader and writer.
 *
 * Round trips check the writer and reader agree; a file built byte by byte here checks they agree
 * with the format rather than only with each other; and every malformed file must give an error
 * whose message names the file (and the tensor, where there is one). Each test works in its own
 * mkdtemp directory, removed afterwards. */
#include "safetensors.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/us_st_test_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_dir);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------------------------- */

static void tpath(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static int dir_entries(void)
{
    DIR *d = opendir(g_dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* The 8-byte little-endian header length, written byte by byte so host order never matters. */
static void put_le64(FILE *f, uint64_t v)
{
    for (int i = 0; i < 8; i++) fputc((int)((v >> (8 * i)) & 0xff), f);
}

/* A file by hand: length hlen (or strlen(header) when hlen is 0), the header text, then data. */
static void write_raw(const char *path, uint64_t hlen, const char *header, const void *data, size_t ndata)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    put_le64(f, hlen ? hlen : strlen(header));
    fprintf(f, "%s", header);
    if (ndata) cr_assert_eq(fwrite(data, 1, ndata, f), ndata);
    cr_assert_eq(fclose(f), 0);
}

/* Opening path fails with code and a message naming the path and each of the needles. */
static void expect_open_error(const char *path, us_status code, const char *needle1, const char *needle2)
{
    us_safetensors *st = (us_safetensors *)1;
    us_error err = {0};
    us_status s = us_safetensors_open(path, &st, &err);
    cr_assert_eq(s, code, "%s: got %s, want %s: %s", path, us_status_name(s), us_status_name(code), err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_null(st, "out must be NULL on failure");
    cr_assert_not_null(strstr(err.msg, path), "message lacks the path: %s", err.msg);
    if (needle1) cr_assert_not_null(strstr(err.msg, needle1), "message lacks \"%s\": %s", needle1, err.msg);
    if (needle2) cr_assert_not_null(strstr(err.msg, needle2), "message lacks \"%s\": %s", needle2, err.msg);
}

/* Writes header (+ 24 bytes of data) to a fresh file and expects a format error. */
static void expect_bad_header(const char *name, const char *header, const char *needle1, const char *needle2)
{
    static const unsigned char data[24] = {0};
    char p[256];
    tpath(p, sizeof p, name);
    write_raw(p, 0, header, data, sizeof data);
    expect_open_error(p, US_ERR_FORMAT, needle1, needle2);
}

static us_st_tensor make(const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data,
                         size_t nbytes)
{
    us_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", dtype);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.data = data;
    t.nbytes = nbytes;
    return t;
}

static void write_ok(const char *path, const us_st_tensor *t, int n, const char *const *meta, int n_meta)
{
    us_error err = {0};
    us_status s = us_safetensors_write(path, t, n, meta, n_meta, &err);
    cr_assert_eq(s, US_OK, "write: %s", err.msg);
}

static us_safetensors *open_ok(const char *path)
{
    us_safetensors *st = NULL;
    us_error err = {0};
    us_status s = us_safetensors_open(path, &st, &err);
    cr_assert_eq(s, US_OK, "open: %s", err.msg);
    cr_assert_not_null(st);
    return st;
}

/* Same name, dtype, shape and bytes. */
static void expect_same(const us_st_tensor *got, const us_st_tensor *want)
{
    cr_assert_not_null(got, "tensor %s missing", want->name);
    cr_assert_str_eq(got->name, want->name);
    cr_assert_str_eq(got->dtype_name, want->dtype_name);
    cr_assert_eq(got->ndim, want->ndim, "%s: ndim", want->name);
    for (int i = 0; i < want->ndim; i++) cr_assert_eq(got->shape[i], want->shape[i], "%s: shape[%d]", want->name, i);
    cr_assert_eq(got->nbytes, want->nbytes, "%s: nbytes", want->name);
    if (want->nbytes) cr_assert_eq(memcmp(got->data, want->data, want->nbytes), 0, "%s: data differs", want->name);
}

/* ---- round trips ---------------------------------------------------------------------------- */

Test(safetensors, round_trip_f32_f16_bf16_and_metadata)
{
    float a[6];
    uint16_t h[5], b[8];
    for (int i = 0; i < 6; i++) a[i] = (float)i * 0.5f - 1.25f;
    for (int i = 0; i < 5; i++) h[i] = us_f32_to_f16((float)i / 3.0f);
    for (int i = 0; i < 8; i++) b[i] = us_f32_to_bf16((float)(i * i) - 7.0f);
    const us_st_tensor t[3] = {
        make("layer.0.q", "F32", 2, (int64_t[]){2, 3}, a, sizeof a),
        make("k", "F16", 1, (int64_t[]){5}, h, sizeof h),
        make("v", "BF16", 3, (int64_t[]){2, 2, 2}, b, sizeof b),
    };
    const char *meta[] = {"format", "pt", "note", "quotes \" and \\ and \xc3\xa9"};
    char p[256];
    tpath(p, sizeof p, "rt.safetensors");
    write_ok(p, t, 3, meta, 2);

    us_safetensors *st = open_ok(p);
    cr_assert_eq(us_safetensors_count(st), 3);
    cr_assert_str_eq(us_safetensors_path(st), p);
    for (int i = 0; i < 3; i++) expect_same(us_safetensors_find(st, t[i].name), &t[i]);
    cr_assert_eq(us_safetensors_find(st, "layer.0.q")->dtype, US_F32);
    cr_assert_eq(us_safetensors_find(st, "k")->dtype, US_F16);
    cr_assert_eq(us_safetensors_find(st, "v")->dtype, US_BF16);
    cr_assert_eq(us_safetensors_find(st, "v")->elem_size, 2);
    cr_assert_str_eq(us_safetensors_metadata(st, "format"), "pt");
    cr_assert_str_eq(us_safetensors_metadata(st, "note"), meta[3]);
    cr_assert_null(us_safetensors_metadata(st, "missing"));
    cr_assert_null(us_safetensors_find(st, "missing"));
    us_safetensors_close(&st);
    cr_assert_null(st);
}

Test(safetensors, round_trip_other_dtypes_scalar_and_empty)
{
    int64_t i64[3] = {-1, 0, INT64_MAX};
    uint8_t u8[7] = {0, 1, 2, 3, 254, 255, 7};
    float scalar = 42.0f;
    const us_st_tensor t[4] = {
        make("ids", "I64", 1, (int64_t[]){3}, i64, sizeof i64),
        make("bytes", "U8", 2, (int64_t[]){7, 1}, u8, sizeof u8),
        make("scalar", "F32", 0, NULL, &scalar, sizeof scalar),
        make("empty", "F16", 2, (int64_t[]){0, 4}, NULL, 0),
    };
    char p[256];
    tpath(p, sizeof p, "misc.safetensors");
    write_ok(p, t, 4, NULL, 0);

    us_safetensors *st = open_ok(p);
    cr_assert_eq(us_safetensors_count(st), 4);
    for (int i = 0; i < 4; i++) expect_same(us_safetensors_find(st, t[i].name), &t[i]);
    cr_assert_eq(us_safetensors_find(st, "ids")->dtype, -1);
    cr_assert_eq(us_safetensors_find(st, "ids")->elem_size, 8);
    cr_assert_eq(us_safetensors_find(st, "scalar")->ndim, 0);
    cr_assert_eq(us_safetensors_find(st, "empty")->nbytes, 0);
    cr_assert_null(us_safetensors_metadata(st, "format"));
    us_safetensors_close(&st);
}

Test(safetensors, writer_pads_header_and_aligns_data)
{
    uint16_t h[3] = {1, 2, 3}; /* 6 bytes: would misalign what follows if written first */
    float f[2] = {1.0f, 2.0f};
    double d[1] = {3.0};
    const us_st_tensor t[3] = {
        make("h", "F16", 1, (int64_t[]){3}, h, sizeof h),
        make("f", "F32", 1, (int64_t[]){2}, f, sizeof f),
        make("d", "F64", 1, (int64_t[]){1}, d, sizeof d),
    };
    char p[256];
    tpath(p, sizeof p, "align.safetensors");
    write_ok(p, t, 3, NULL, 0);

    size_t n = 0;
    unsigned char *b = read_bytes(p, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    cr_assert_eq(hlen % 8, 0, "header length %llu is not a multiple of 8", (unsigned long long)hlen);
    cr_assert_eq(n, 8 + hlen + sizeof h + sizeof f + sizeof d);
    cr_assert_eq(b[8], '{');
    free(b);

    us_safetensors *st = open_ok(p);
    for (int i = 0; i < 3; i++) {
        const us_st_tensor *g = us_safetensors_at(st, i);
        cr_assert_str_eq(g->name, t[i].name, "header order is the caller's order");
        cr_assert_eq((uintptr_t)g->data % g->elem_size, 0, "%s misaligned", g->name);
        expect_same(g, &t[i]);
    }
    us_safetensors_close(&st);
}

Test(safetensors, write_replaces_existing_file_and_leaves_no_temp)
{
    float one = 1.0f, two[2] = {2.0f, 3.0f};
    us_st_tensor a = make("a", "F32", 1, (int64_t[]){1}, &one, sizeof one);
    us_st_tensor b = make("b", "F32", 1, (int64_t[]){2}, two, sizeof two);
    char p[256];
    tpath(p, sizeof p, "replace.safetensors");
    write_ok(p, &a, 1, NULL, 0);
    write_ok(p, &b, 1, NULL, 0);
    cr_assert_eq(dir_entries(), 1, "a temporary file was left behind");
    us_safetensors *st = open_ok(p);
    cr_assert_eq(us_safetensors_count(st), 1);
    cr_assert_null(us_safetensors_find(st, "a"));
    expect_same(us_safetensors_find(st, "b"), &b);
    us_safetensors_close(&st);
}

/* ---- an independent construction ---------------------------------------------------------- */

/* The header text as another writer might produce it: spaces, unsorted keys, metadata last,
 * offsets out of order, a length that is not a multiple of 8. */
static const char k_hand_header[] =
    "{ \"w\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [24, 32]},\n"
    "  \"a\": {\"shape\": [2, 3], \"data_offsets\": [0, 24], \"dtype\": \"F32\"},\n"
    "  \"__metadata__\": {\"format\": \"pt\"} }  ";

static void write_hand_file(const char *path)
{
    /* Data bytes spelled out in little-endian: F32 1..6, then BF16 1.0, -2.0, 0.5, 3.0. */
    static const unsigned char data[32] = {
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, /* 1 2 3 */
        0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40, 0x00, 0x00, 0xc0, 0x40, /* 4 5 6 */
        0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40,                         /* bf16 */
    };
    write_raw(path, 0, k_hand_header, data, sizeof data);
}

Test(safetensors, reads_a_hand_built_file)
{
    char p[256];
    tpath(p, sizeof p, "hand.safetensors");
    write_hand_file(p);

    us_safetensors *st = open_ok(p);
    cr_assert_eq(us_safetensors_count(st), 2);
    cr_assert_str_eq(us_safetensors_at(st, 0)->name, "w", "at() follows the header order");
    cr_assert_str_eq(us_safetensors_metadata(st, "format"), "pt");

    const us_st_tensor *a = us_safetensors_find(st, "a");
    cr_assert_not_null(a);
    cr_assert_eq(a->dtype, US_F32);
    cr_assert_eq(a->ndim, 2);
    cr_assert_eq(a->shape[0], 2);
    cr_assert_eq(a->shape[1], 3);
    cr_assert_eq(a->nbytes, 24);
    for (int i = 0; i < 6; i++) {
        float v;
        memcpy(&v, (const char *)a->data + 4 * i, 4);
        cr_assert_eq(v, (float)(i + 1), "a[%d] = %g", i, v);
    }
    const us_st_tensor *w = us_safetensors_find(st, "w");
    cr_assert_not_null(w);
    cr_assert_eq(w->dtype, US_BF16);
    cr_assert_eq(w->nbytes, 8);
    cr_assert_eq((const char *)w->data - (const char *)a->data, 24);
    const float want[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    for (int i = 0; i < 4; i++) {
        uint16_t bits;
        memcpy(&bits, (const char *)w->data + 2 * i, 2);
        cr_assert_eq(us_bf16_to_f32(bits), want[i], "w[%d]", i);
    }
    us_safetensors_close(&st);
}

Test(safetensors, writer_matches_hand_built_file)
{
    char hand[256], ours[256];
    tpath(hand, sizeof hand, "hand.safetensors");
    tpath(ours, sizeof ours, "ours.safetensors");
    write_hand_file(hand);
    us_safetensors *h = open_ok(hand);

    /* Rewrite what was read, then compare both readings tensor by tensor. */
    us_st_tensor copy[2];
    for (int i = 0; i < 2; i++) copy[i] = *us_safetensors_at(h, i);
    const char *meta[] = {"format", us_safetensors_metadata(h, "format")};
    write_ok(ours, copy, 2, meta, 1);
    us_safetensors *o = open_ok(ours);
    cr_assert_eq(us_safetensors_count(o), 2);
    for (int i = 0; i < 2; i++) expect_same(us_safetensors_find(o, copy[i].name), us_safetensors_at(h, i));
    cr_assert_str_eq(us_safetensors_metadata(o, "format"), "pt");
    us_safetensors_close(&o);
    us_safetensors_close(&h);
}

/* ---- malformed files ----------------------------------------------------------------------- */

Test(safetensors, truncated_files)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    us_st_tensor t[2] = {
        make("first", "F32", 1, (int64_t[]){2}, a, 8),
        make("second", "F32", 2, (int64_t[]){2, 2}, a + 2, 16),
    };
    char good[256];
    tpath(good, sizeof good, "good.safetensors");
    write_ok(good, t, 2, NULL, 0);
    size_t n = 0;
    unsigned char *b = read_bytes(good, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];

    const size_t cuts[] = {0, 4, 7, 8, 8 + hlen / 2, 8 + hlen + 12, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char p[256], name[64];
        snprintf(name, sizeof name, "cut_%zu.safetensors", cuts[i]);
        tpath(p, sizeof p, name);
        write_bytes(p, b, cuts[i]);
        /* Cut inside the data, the message names the tensor that no longer fits. */
        expect_open_error(p, US_ERR_FORMAT, "truncated", cuts[i] > 8 + hlen ? "\"second\"" : NULL);
    }
    free(b);
}

Test(safetensors, header_length_bigger_than_file)
{
    char p[256];
    tpath(p, sizeof p, "long.safetensors");
    write_raw(p, 4096, "{}", NULL, 0);
    expect_open_error(p, US_ERR_FORMAT, "4096", "truncated");
    tpath(p, sizeof p, "absurd.safetensors");
    write_raw(p, (uint64_t)1 << 40, "{}", NULL, 0);
    expect_open_error(p, US_ERR_FORMAT, "absurd", NULL);
}

Test(safetensors, header_not_json_or_not_an_object)
{
    expect_bad_header("json.safetensors", "{\"a\": {\"dtype\": \"F32\",", "JSON", NULL);
    expect_bad_header("array.safetensors", "[1, 2, 3]", "not a JSON object", NULL);
    expect_bad_header("trail.safetensors", "{} xyz", "after the JSON", NULL);
    expect_bad_header("empty.safetensors", "  ", "JSON", NULL);
    char p[256];
    tpath(p, sizeof p, "nul.safetensors");
    write_raw(p, 4, "{}", "\0 ", 2); /* header length 4 covers "{}\0 " */
    expect_open_error(p, US_ERR_FORMAT, "NUL", NULL);
}

Test(safetensors, unknown_dtype)
{
    expect_bad_header("q9.safetensors", "{\"odd\": {\"dtype\": \"Q9\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
                      "\"odd\"", "Q9");
}

Test(safetensors, bad_tensor_entries)
{
    static const struct {
        const char *header, *needle;
    } cases[] = {
        {"{\"t\": 5}", "not a JSON object"},
        {"{\"t\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "dtype"},
        {"{\"t\": {\"dtype\": 3, \"shape\": [1], \"data_offsets\": [0, 4]}}", "dtype"},
        {"{\"t\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", "shape"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", "shape"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "shape[0]"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", "shape[0]"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", "9 dims"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1]}}", "data_offsets"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "data_offsets"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", "data_offsets"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", "data_offsets"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", "begin after end"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
         "\"data_offsets\": [0, 0]}}", "overflow"},
        {"{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
         "\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "entry_%zu.safetensors", i);
        expect_bad_header(name, cases[i].header, "\"t\"", cases[i].needle);
    }
}

Test(safetensors, shape_bytes_mismatch)
{
    expect_bad_header("mismatch.safetensors",
                      "{\"m\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", "\"m\"",
                      "needs 24 bytes");
}

Test(safetensors, offsets_past_the_end)
{
    expect_bad_header("past.safetensors",
                      "{\"p\": {\"dtype\": \"F32\", \"shape\": [2, 6], \"data_offsets\": [0, 48]}}", "\"p\"",
                      "past the end");
}

Test(safetensors, negative_shape_entry)
{
    expect_bad_header("neg.safetensors",
                      "{\"n\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 24]}}", "\"n\"",
                      "negative");
}

Test(safetensors, zero_dim_beats_huge_dims)
{
    /* [2^40, 2^40, 0] holds no elements: valid, and no overflow on the way. */
    char p[256];
    tpath(p, sizeof p, "zero.safetensors");
    write_raw(p, 0, "{\"z\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776, 0], "
                    "\"data_offsets\": [0, 0]}}", NULL, 0);
    us_safetensors *st = open_ok(p);
    cr_assert_eq(us_safetensors_find(st, "z")->nbytes, 0);
    us_safetensors_close(&st);
}

Test(safetensors, tensor_name_too_long)
{
    char name[301], header[512];
    memset(name, 'x', 300);
    name[300] = 0;
    snprintf(header, sizeof header, "{\"%s\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", name);
    expect_bad_header("longname.safetensors", header, "xxxxxxxxxx", "300 bytes");
}

Test(safetensors, bad_metadata)
{
    expect_bad_header("meta1.safetensors", "{\"__metadata__\": {\"a\": 1}}", "__metadata__", "not a string");
    expect_bad_header("meta2.safetensors", "{\"__metadata__\": [\"a\"]}", "__metadata__", "not a JSON object");
}

Test(safetensors, missing_file_and_directory)
{
    char p[256];
    tpath(p, sizeof p, "does_not_exist.safetensors");
    expect_open_error(p, US_ERR_IO, strerror(ENOENT), NULL);
    expect_open_error(g_dir, US_ERR_IO, "not a regular file", NULL);
}

/* ---- writer errors ------------------------------------------------------------------------- */

Test(safetensors, write_rejects_inconsistent_tensors)
{
    float a[6] = {0};
    char p[256];
    tpath(p, sizeof p, "bad_write.safetensors");
    const us_st_tensor bad[] = {
        make("short", "F32", 2, (int64_t[]){2, 3}, a, 20),
        make("q9", "Q9", 1, (int64_t[]){6}, a, 24),
        make("neg", "F32", 2, (int64_t[]){-2, -3}, a, 24),
        make("__metadata__", "F32", 1, (int64_t[]){6}, a, 24),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        us_error err = {0};
        us_status s = us_safetensors_write(p, &bad[i], 1, NULL, 0, &err);
        cr_assert_eq(s, US_ERR_INVALID, "%s: %s", bad[i].name, err.msg);
        cr_assert_not_null(strstr(err.msg, p), "%s", err.msg);
    }
    us_st_tensor twice[2] = {make("d", "F32", 1, (int64_t[]){6}, a, 24), make("d", "F32", 1, (int64_t[]){6}, a, 24)};
    us_error err = {0};
    cr_assert_eq(us_safetensors_write(p, twice, 2, NULL, 0, &err), US_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "\"d\""), "%s", err.msg);
    cr_assert_eq(dir_entries(), 0, "nothing may be written");
}

Test(safetensors, write_into_missing_directory)
{
    float a = 1.0f;
    us_st_tensor t = make("a", "F32", 1, (int64_t[]){1}, &a, sizeof a);
    char p[256];
    tpath(p, sizeof p, "no_such_dir/x.safetensors");
    us_error err = {0};
    cr_assert_eq(us_safetensors_write(p, &t, 1, NULL, 0, &err), US_ERR_IO);
    cr_assert_not_null(strstr(err.msg, p), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    cr_assert_eq(dir_entries(), 0);
}

Test(safetensors, accessors_tolerate_null)
{
    us_safetensors *st = NULL;
    us_safetensors_close(&st);
    us_safetensors_close(NULL);
    cr_assert_eq(us_safetensors_count(NULL), 0);
    cr_assert_null(us_safetensors_at(NULL, 0));
    cr_assert_null(us_safetensors_find(NULL, "a"));
    cr_assert_null(us_safetensors_metadata(NULL, "a"));
    cr_assert_null(us_safetensors_path(NULL));
    /* err may be NULL: the code still comes back. */
    cr_assert_eq(us_safetensors_open("/nonexistent/x.safetensors", &st, NULL), US_ERR_IO);

    char p[256];
    tpath(p, sizeof p, "hand.safetensors");
    write_hand_file(p);
    st = open_ok(p);
    cr_assert_null(us_safetensors_at(st, -1));
    cr_assert_null(us_safetensors_at(st, 2));
    us_safetensors_close(&st);
}
