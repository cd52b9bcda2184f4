/* sp_model_proto.c: writes a serialized SentencePiece ModelProto from piece arrays and settings.
 *
 * Protobuf wire format, proto2: each field is a varint key (number << 3 | wire type) and a value:
 * varint (0) for ints, bools and enums (negative int32 as a 10-byte sign-extended varint), fixed32
 * (5) for floats, little-endian, and length-delimited (2) for strings and sub-messages. Field numbers
 * are listed in sp_model_proto.h. Sub-messages are written into a scratch buffer first, then copied
 * after their length.
 */
#include "sp_model_proto.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool failed; /* an allocation failed; later writes do nothing */
} pb_buf;

static void pb_reserve(pb_buf *b, size_t extra)
{
    if (b->failed || b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void pb_bytes(pb_buf *b, const void *data, size_t n)
{
    pb_reserve(b, n);
    if (b->failed) return;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(pb_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_bytes(b, tmp, n);
}

static void pb_key(pb_buf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_int(pb_buf *b, int field, int64_t v)
{
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v); /* two's complement: -1 becomes ten bytes, as protobuf writes it */
}

static void pb_float(pb_buf *b, int field, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, WIRE_FIXED32);
    pb_bytes(b, le, 4);
}

static void pb_lenbytes(pb_buf *b, int field, const void *data, size_t n)
{
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_bytes(b, data, n);
}

static void pb_string(pb_buf *b, int field, const char *s) { pb_lenbytes(b, field, s, strlen(s)); }

us_sp_settings us_sp_settings_gemma(void)
{
    us_sp_settings s = {
        .model_type = US_SP_BPE,
        .byte_fallback = true,
        .split_digits = true,
        .allow_whitespace_only_pieces = true,
        .treat_whitespace_as_suffix = false,
        .pad_id = 0, .eos_id = 1, .bos_id = 2, .unk_id = 3,
        .normalizer_name = "identity",
        .add_dummy_prefix = false,
        .remove_extra_whitespaces = false,
        .escape_whitespaces = true,
    };
    return s;
}

static us_status check_inputs(const char *const *pieces, const float *scores, const int *types, int n,
                              const us_sp_settings *s, us_error *err)
{
    if (!pieces || !scores || !types || !s)
        return us_error_set(err, US_ERR_INVALID, "sp_model_proto: pieces, scores, types and settings are required");
    if (n <= 0) return us_error_set(err, US_ERR_INVALID, "sp_model_proto: %d pieces; need at least one", n);
    if (s->model_type < US_SP_UNIGRAM || s->model_type > US_SP_CHAR)
        return us_error_set(err, US_ERR_INVALID, "sp_model_proto: model_type %d is not 1..4", (int)s->model_type);
    const int32_t ids[4] = {s->unk_id, s->bos_id, s->eos_id, s->pad_id};
    const char *names[4] = {"unk_id", "bos_id", "eos_id", "pad_id"};
    for (int k = 0; k < 4; k++)
        if (ids[k] < -1 || ids[k] >= n)
            return us_error_set(err, US_ERR_INVALID, "sp_model_proto: %s %d is outside [-1, %d)", names[k], (int)ids[k], n);
    int n_unknown = 0;
    for (int i = 0; i < n; i++) {
        if (!pieces[i] || !pieces[i][0])
            return us_error_set(err, US_ERR_INVALID, "sp_model_proto: piece %d is empty", i);
        if (types[i] < US_SP_NORMAL || types[i] > US_SP_BYTE)
            return us_error_set(err, US_ERR_INVALID, "sp_model_proto: piece %d ('%s') has type %d; expected 1..6",
                                i, pieces[i], types[i]);
        n_unknown += types[i] == US_SP_UNKNOWN;
    }
    if (n_unknown != 1 || s->unk_id < 0 || types[s->unk_id] != US_SP_UNKNOWN)
        return us_error_set(err, US_ERR_INVALID,
                            "sp_model_proto: need exactly one UNKNOWN piece, at unk_id %d (found %d UNKNOWN pieces)",
                            (int)s->unk_id, n_unknown);
    return US_OK;
}

static void write_trainer_spec(pb_buf *t, const char *const *pieces, int n, const us_sp_settings *s)
{
    pb_int(t, 3, s->model_type);
    pb_int(t, 4, n);
    pb_int(t, 24, s->treat_whitespace_as_suffix);
    pb_int(t, 25, s->split_digits);
    pb_int(t, 26, s->allow_whitespace_only_pieces);
    pb_int(t, 35, s->byte_fallback);
    pb_int(t, 40, s->unk_id);
    pb_int(t, 41, s->bos_id);
    pb_int(t, 42, s->eos_id);
    pb_int(t, 43, s->pad_id);
    pb_string(t, 44, " \xE2\x81\x87 "); /* unk_surface: " ⁇ ", SentencePiece's default */
    pb_string(t, 45, pieces[s->unk_id]);
    if (s->bos_id >= 0) pb_string(t, 46, pieces[s->bos_id]);
    if (s->eos_id >= 0) pb_string(t, 47, pieces[s->eos_id]);
    if (s->pad_id >= 0) pb_string(t, 48, pieces[s->pad_id]);
}

static void write_normalizer_spec(pb_buf *t, const us_sp_settings *s)
{
    pb_string(t, 1, s->normalizer_name ? s->normalizer_name : "identity");
    pb_int(t, 3, s->add_dummy_prefix);
    pb_int(t, 4, s->remove_extra_whitespaces);
    pb_int(t, 5, s->escape_whitespaces);
}

us_status us_sp_model_proto_build(const char *const *pieces, const float *scores, const int *types,
                                  int n, const us_sp_settings *s, uint8_t **out, size_t *out_len,
                                  us_error *err)
{
    if (!out || !out_len) return us_error_set(err, US_ERR_INVALID, "sp_model_proto: out and out_len are required");
    *out = NULL;
    *out_len = 0;
    us_status st = check_inputs(pieces, scores, types, n, s, err);
    if (st) return st;

    pb_buf b = {0}, sub = {0};
    for (int i = 0; i < n && !b.failed; i++) {
        sub.len = 0;
        pb_string(&sub, 1, pieces[i]);
        pb_float(&sub, 2, scores[i]);
        pb_int(&sub, 3, types[i]);
        if (!sub.failed) pb_lenbytes(&b, 1, sub.p, sub.len);
    }
    sub.len = 0;
    write_trainer_spec(&sub, pieces, n, s);
    if (!sub.failed) pb_lenbytes(&b, 2, sub.p, sub.len);
    sub.len = 0;
    write_normalizer_spec(&sub, s);
    if (!sub.failed) pb_lenbytes(&b, 3, sub.p, sub.len);

    bool failed = b.failed || sub.failed;
    free(sub.p);
    if (failed) {
        free(b.p);
        return us_error_set(err, US_ERR_NOMEM, "sp_model_proto: no memory for a %d-piece model", n);
    }
    *out = b.p;
    *out_len = b.len;
    return US_OK;
}
