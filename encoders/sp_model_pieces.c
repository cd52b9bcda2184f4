/* sp_model_pieces.c: reads the piece list (piece, score, type) out of serialized ModelProto bytes.
 *
 * Why: the tokenizer needs every piece's type to find the special pieces (CONTROL, USER_DEFINED) it
 * splits out of text, and SentencePiece's C++ API does not expose USER_DEFINED. Only
 * ModelProto.pieces (field 1) is decoded; every other field is skipped by its wire type, so this also
 * rejects bytes that are not a protobuf message at all, with a message naming the source. The one
 * exception: the normalizer specs' precompiled charsmaps are checked (sp_charsmap.c), since
 * SentencePiece would use them unchecked.
 */
#include "sp_model_proto.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

static bool rd_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads one key; on a length-delimited field, also its payload into [*data, *data + *n). */
static bool rd_field(pb_reader *r, int *field, int *wire, uint64_t *value, const uint8_t **data, size_t *n)
{
    uint64_t key;
    if (!rd_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return false;
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return rd_varint(r, value);
    case 1:
        if (r->end - r->p < 8) return false;
        r->p += 8;
        return true;
    case 5:
        if (r->end - r->p < 4) return false;
        *value = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
        r->p += 4;
        return true;
    case 2: {
        uint64_t len;
        if (!rd_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return false;
        *data = r->p;
        *n = (size_t)len;
        r->p += len;
        return true;
    }
    default: return false; /* groups (3, 4) are not used by sentencepiece_model.proto */
    }
}

/* Decodes one ModelProto.SentencePiece message into slot i of out. */
static us_status read_piece(const uint8_t *data, size_t n, int i, const char *what, us_sp_pieces *out,
                            us_error *err)
{
    pb_reader r = {data, data + n};
    const uint8_t *text = NULL;
    size_t text_len = 0;
    float score = 0.0f;
    int type = US_SP_NORMAL;
    while (r.p < r.end) {
        int field, wire;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        size_t dn = 0;
        if (!rd_field(&r, &field, &wire, &v, &d, &dn))
            return us_error_set(err, US_ERR_FORMAT, "%s: piece %d is not a valid protobuf message", what, i);
        if (field == 1 && wire == 2) {
            text = d;
            text_len = dn;
        } else if (field == 2 && wire == 5) {
            uint32_t u = (uint32_t)v;
            memcpy(&score, &u, sizeof score);
        } else if (field == 3 && wire == 0) {
            type = (int)v;
        }
    }
    if (!text || text_len == 0 || memchr(text, 0, text_len))
        return us_error_set(err, US_ERR_FORMAT, "%s: piece %d has no text (or a NUL byte in it)", what, i);
    if (type < US_SP_NORMAL || type > US_SP_BYTE)
        return us_error_set(err, US_ERR_FORMAT, "%s: piece %d has type %d; expected 1..6", what, i, type);
    char *s = malloc(text_len + 1);
    if (!s) return us_error_set(err, US_ERR_NOMEM, "%s: no memory for piece %d", what, i);
    memcpy(s, text, text_len);
    s[text_len] = '\0';
    out->pieces[i] = s;
    out->scores[i] = score;
    out->types[i] = type;
    return US_OK;
}

/* Checks every precompiled_charsmap (field 2) of a NormalizerSpec message: protobuf keeps the last
 * of repeated fields and merges repeated messages, so checking each occurrence covers the one
 * SentencePiece ends up with. */
static us_status check_normalizer(const uint8_t *data, size_t n, const char *what, const char *spec, us_error *err)
{
    pb_reader r = {data, data + n};
    while (r.p < r.end) {
        int field, wire;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        size_t dn = 0;
        if (!rd_field(&r, &field, &wire, &v, &d, &dn))
            return us_error_set(err, US_ERR_FORMAT, "%s: %s is not a valid protobuf message", what, spec);
        if (field == 2 && wire == 2) {
            us_status st = us_sp_charsmap_check(d, dn, what, spec, err);
            if (st) return st;
        }
    }
    return US_OK;
}

void us_sp_pieces_free(us_sp_pieces *p)
{
    if (!p) return;
    for (int i = 0; p->pieces && i < p->n; i++) free(p->pieces[i]);
    free(p->pieces);
    free(p->scores);
    free(p->types);
    memset(p, 0, sizeof *p);
}

us_status us_sp_pieces_read(const uint8_t *bytes, size_t len, const char *what, us_sp_pieces *out,
                            us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "sp_pieces_read: out is required");
    memset(out, 0, sizeof *out);
    if (!what) what = "model proto";
    if (!bytes || len == 0) return us_error_set(err, US_ERR_FORMAT, "%s: empty model", what);

    /* Pass 1: validate the top level and count the pieces. */
    pb_reader r = {bytes, bytes + len};
    size_t count = 0;
    while (r.p < r.end) {
        int field, wire;
        uint64_t v;
        const uint8_t *d;
        size_t dn;
        if (!rd_field(&r, &field, &wire, &v, &d, &dn))
            return us_error_set(err, US_ERR_FORMAT, "%s: not a SentencePiece model (bad protobuf at byte %zu)",
                                what, (size_t)(r.p - bytes));
        if (field == 1 && wire != 2)
            return us_error_set(err, US_ERR_FORMAT, "%s: not a SentencePiece model (field 1 is not a message)", what);
        if ((field == 3 || field == 5) && wire == 2) {
            us_status st = check_normalizer(d, dn, what, field == 3 ? "normalizer_spec" : "denormalizer_spec", err);
            if (st) return st;
        }
        count += field == 1;
    }
    if (count == 0 || count > 0x7fffffff)
        return us_error_set(err, US_ERR_FORMAT, "%s: not a SentencePiece model (%zu pieces)", what, count);

    out->pieces = calloc(count, sizeof *out->pieces);
    out->scores = calloc(count, sizeof *out->scores);
    out->types = calloc(count, sizeof *out->types);
    out->n = (int)count;
    if (!out->pieces || !out->scores || !out->types) {
        us_sp_pieces_free(out);
        return us_error_set(err, US_ERR_NOMEM, "%s: no memory for %zu pieces", what, count);
    }
    /* Pass 2: decode them. */
    r.p = bytes;
    int i = 0;
    while (r.p < r.end) {
        int field, wire;
        uint64_t v;
        const uint8_t *d = NULL;
        size_t dn = 0;
        rd_field(&r, &field, &wire, &v, &d, &dn); /* cannot fail: pass 1 read the same bytes */
        if (field != 1) continue;
        us_status st = read_piece(d, dn, i++, what, out, err);
        if (st) {
            us_sp_pieces_free(out);
            return st;
        }
    }
    return US_OK;
}
