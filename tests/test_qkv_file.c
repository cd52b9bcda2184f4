/* test_qkv_file.c: the `--qkv` attention input: round trip with masks, and every bad file gets an
 * error that names it. */
#include "qkv_file.h"
#include "reference.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/us_qkv_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(qkv_file, .init = setup, .fini = teardown);

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

Test(qkv_file, round_trip_with_spans)
{
    float q[2 * 10 * 8], k[10 * 8], v[10 * 8];
    ref_fill_gaussian(q, 160, 1, 1.0f);
    ref_fill_gaussian(k, 80, 2, 1.0f);
    ref_fill_gaussian(v, 80, 3, 1.0f);
    us_tensor tq = us_tensor_3d(q, US_F32, 2, 10, 8), tk = us_tensor_3d(k, US_F32, 1, 10, 8),
              tv = us_tensor_3d(v, US_F32, 1, 10, 8);
    us_span sp[] = {{2, 5}, {7, 9}};
    us_mask m = {US_MASK_CAUSAL_SPANS, sp, 2};
    char p[128];
    path_of(p, sizeof p, "x.safetensors");
    us_error err;
    cr_assert_eq(us_qkv_save(p, &tq, &tk, &tv, &m, &err), US_OK, "%s", err.msg);
    us_qkv in;
    cr_assert_eq(us_qkv_load(p, &in, &err), US_OK, "%s", err.msg);
    cr_expect_eq(in.mask.kind, US_MASK_CAUSAL_SPANS);
    cr_assert_eq(in.mask.n_spans, 2);
    cr_expect_eq(in.mask.spans[1].start, 7);
    cr_expect_eq(in.mask.spans[1].end, 9);
    cr_expect_eq(in.q.shape[0], 2);
    cr_expect_eq(in.k.shape[1], 10);
    cr_expect_eq(memcmp(in.v.data, v, sizeof v), 0);
    us_qkv_free(&in);
}

/* Writes a file from a header text and a data size. */
static void write_raw(const char *p, const char *header, size_t data_bytes)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    uint64_t n = strlen(header);
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void expect_error(const char *name, const char *header, size_t data_bytes, const char *needle)
{
    char p[128];
    path_of(p, sizeof p, name);
    write_raw(p, header, data_bytes);
    us_qkv in;
    us_error err;
    memset(&err, 0, sizeof err);
    cr_expect_neq(us_qkv_load(p, &in, &err), US_OK, "%s should fail", name);
    cr_expect_not_null(strstr(err.msg, p), "message '%s' should name the file", err.msg);
    cr_expect_not_null(strstr(err.msg, needle), "message '%s' should mention '%s'", err.msg, needle);
}

Test(qkv_file, bad_files_are_named)
{
    /* q [1,4,8] f32 = 128 bytes, k, v [1,4,8] = 128 bytes each */
    expect_error("missing_v.safetensors",
                 "{\"q\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]}}",
                 256, "'v'");
    expect_error("int_dtype.safetensors",
                 "{\"q\":{\"dtype\":\"I32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[256,384]}}",
                 384, "I32");
    expect_error("unknown_dtype.safetensors",
                 "{\"q\":{\"dtype\":\"Q9\",\"shape\":[1,4,8],\"data_offsets\":[0,128]}}", 128, "Q9");
    expect_error("two_dims.safetensors",
                 "{\"q\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[256,384]}}",
                 384, "dims");
    expect_error("head_dim_mismatch.safetensors",
                 "{\"q\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,2,16],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,2,16],\"data_offsets\":[256,384]}}",
                 384, "head dims");
    expect_error("truncated.safetensors",
                 "{\"q\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[256,384]}}",
                 300, "v");
    expect_error("bad_mask.safetensors",
                 "{\"__metadata__\":{\"mask\":\"sideways\"},"
                 "\"q\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[256,384]}}",
                 384, "sideways");
    expect_error("bad_spans.safetensors",
                 "{\"__metadata__\":{\"mask\":\"spans\",\"spans\":\"[[3,2]]\"},"
                 "\"q\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[0,128]},"
                 "\"k\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[128,256]},"
                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1,4,8],\"data_offsets\":[256,384]}}",
                 384, "span");
}

Test(qkv_file, missing_file_is_named)
{
    us_qkv in;
    us_error err;
    cr_expect_eq(us_qkv_load("/nonexistent/dir/x.safetensors", &in, &err), US_ERR_IO);
    cr_expect_not_null(strstr(err.msg, "/nonexistent/dir/x.safetensors"), "%s", err.msg);
}

Test(qkv_file, misaligned_tensors_are_copied_aligned)
{
    /* a header of odd length leaves the f32 data at an odd address in the mapping */
    const char *header = "{\"q\":{\"dtype\":\"F32\",\"shape\":[1,2,8],\"data_offsets\":[0,64]},"
                         "\"k\":{\"dtype\":\"F32\",\"shape\":[1,2,8],\"data_offsets\":[64,128]},"
                         "\"v\":{\"dtype\":\"F32\",\"shape\":[1,2,8],\"data_offsets\":[128,192]}} ";
    char p[128];
    path_of(p, sizeof p, "odd.safetensors");
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    uint64_t n = strlen(header);
    cr_assert(n % 4 != 0, "the header must leave the data misaligned (length %llu)", (unsigned long long)n);
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    for (int i = 0; i < 48; i++) {
        float x = (float)i * 0.5f;
        fwrite(&x, 4, 1, f);
    }
    fclose(f);
    us_qkv in;
    us_error err;
    cr_assert_eq(us_qkv_load(p, &in, &err), US_OK, "%s", err.msg);
    cr_expect_eq((uintptr_t)in.v.data % 4, 0);
    cr_expect_float_eq(us_tensor_get(&in.v, 0, 1, 7), 47 * 0.5f, 0);
    cr_expect_float_eq(us_tensor_get(&in.q, 0, 0, 3), 3 * 0.5f, 0);
    us_qkv_free(&in);
}
