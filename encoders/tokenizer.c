/* tokenizer.c: the C tokenizer API (tokenizer.h) over the SentencePiece shim.
 *
 * Owns the SentencePiece processor, the piece list read from the same ModelProto bytes (for piece
 * types, which the C++ API does not expose) and the table of special pieces split out before
 * SentencePiece sees the text. File reading and every error message live here, in C.
 */
#include "tokenizer.h"

#include "sp_model_proto.h"
#include "sp_shim.h"
#include "tokenizer_special.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct us_tokenizer {
    us_sp_proc *sp;
    us_sp_pieces pieces;      /* the model's pieces: pieces.n == SentencePiece's size */
    us_special_table specials;
};

static us_status create(const void *bytes, size_t len, const char *what, us_tokenizer **out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "tokenizer: out is required");
    *out = NULL;
    us_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return us_error_set(err, US_ERR_NOMEM, "%s: no memory for a tokenizer", what);
    us_status st = us_sp_pieces_read(bytes, len, what, &t->pieces, err);
    if (!st) st = us_sp_proc_create(bytes, len, what, &t->sp, err);
    if (!st && us_sp_proc_size(t->sp) != t->pieces.n)
        st = us_error_set(err, US_ERR_FORMAT, "%s: SentencePiece sees %d pieces, the proto has %d", what,
                          (int)us_sp_proc_size(t->sp), t->pieces.n);
    for (int i = 0; !st && i < t->pieces.n; i++) {
        int ty = t->pieces.types[i];
        if (ty == US_SP_CONTROL || ty == US_SP_USER_DEFINED)
            st = us_special_table_add(&t->specials, t->pieces.pieces[i], strlen(t->pieces.pieces[i]), i, err);
    }
    if (st) {
        us_tokenizer_free(&t);
        return st;
    }
    us_special_table_index(&t->specials);
    *out = t;
    return US_OK;
}

us_status us_tokenizer_create_from_proto(const void *bytes, size_t len, us_tokenizer **tok, us_error *err)
{
    return create(bytes, len, "model proto", tok, err);
}

us_status us_tokenizer_load(const char *path, us_tokenizer **tok, us_error *err)
{
    if (tok) *tok = NULL;
    if (!path) return us_error_set(err, US_ERR_INVALID, "tokenizer: path is required");
    FILE *f = fopen(path, "rb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return us_error_set(err, US_ERR_IO, "%s: cannot find the file size", path);
    }
    if (size == 0) {
        fclose(f);
        return us_error_set(err, US_ERR_FORMAT, "%s: empty file; not a SentencePiece model", path);
    }
    char *buf = malloc((size_t)size);
    if (!buf) {
        fclose(f);
        return us_error_set(err, US_ERR_NOMEM, "%s: no memory for %ld bytes", path, size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return us_error_set(err, US_ERR_IO, "%s: short read (%zu of %ld bytes)", path, got, size);
    }
    us_status st = create(buf, got, path, tok, err);
    free(buf);
    return st;
}

void us_tokenizer_free(us_tokenizer **tok)
{
    if (!tok || !*tok) return;
    us_sp_proc_free((*tok)->sp);
    us_sp_pieces_free(&(*tok)->pieces);
    us_special_table_free(&(*tok)->specials);
    free(*tok);
    *tok = NULL;
}

int32_t us_tokenizer_vocab_size(const us_tokenizer *tok) { return tok ? tok->pieces.n : 0; }

int32_t us_tokenizer_piece_to_id(const us_tokenizer *tok, const char *piece)
{
    if (!tok || !piece || !piece[0]) return -1;
    int32_t id = us_sp_proc_piece_to_id(tok->sp, piece);
    if (id >= 0 && id < tok->pieces.n && strcmp(tok->pieces.pieces[id], piece) == 0) return id;
    size_t len = strlen(piece);
    for (int i = 0; i < tok->specials.n; i++) {
        const us_special *s = &tok->specials.items[i];
        if (s->id >= tok->pieces.n && s->len == len && memcmp(s->text, piece, len) == 0) return s->id;
    }
    return -1;
}

const char *us_tokenizer_id_to_piece(const us_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0) return NULL;
    if (id < tok->pieces.n) return tok->pieces.pieces[id];
    const us_special *s = us_special_table_by_id(&tok->specials, id);
    return s ? s->text : NULL;
}

int us_tokenizer_piece_type(const us_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0) return 0;
    if (id < tok->pieces.n) return tok->pieces.types[id];
    return us_special_table_by_id(&tok->specials, id) ? US_SP_CONTROL : 0;
}

us_status us_tokenizer_add_special(us_tokenizer *tok, const char *text, int32_t id, us_error *err)
{
    if (!tok || !text || !text[0]) return us_error_set(err, US_ERR_INVALID, "tokenizer: add_special needs a tokenizer and text");
    if (id < tok->pieces.n)
        return us_error_set(err, US_ERR_INVALID, "tokenizer: special '%s' id %d lies inside the %d-piece vocabulary",
                            text, (int)id, tok->pieces.n);
    if (us_special_table_by_id(&tok->specials, id))
        return us_error_set(err, US_ERR_INVALID, "tokenizer: special id %d is already taken", (int)id);
    if (us_tokenizer_piece_to_id(tok, text) >= 0)
        return us_error_set(err, US_ERR_INVALID, "tokenizer: '%s' already has an id", text);
    us_status st = us_special_table_add(&tok->specials, text, strlen(text), id, err);
    us_special_table_index(&tok->specials);
    return st;
}

us_status us_tokenizer_encode(const us_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                              size_t capacity, size_t *n, us_error *err)
{
    if (!tok || !n || (!text && len) || (!ids && capacity))
        return us_error_set(err, US_ERR_INVALID, "tokenizer: encode needs a tokenizer, text, ids (or capacity 0) and n");
    *n = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t off = 0;
        int k = us_special_table_find(&tok->specials, text + pos, len - pos, &off);
        size_t seg = k < 0 ? len - pos : off;
        if (seg) {
            us_status st = us_sp_proc_encode(tok->sp, text + pos, seg, ids, capacity, n, err);
            if (st) return st;
        }
        if (k < 0) break;
        if (*n < capacity) ids[*n] = tok->specials.items[k].id;
        ++*n;
        pos += seg + tok->specials.items[k].len;
    }
    if (ids && *n > capacity)
        return us_error_set(err, US_ERR_INVALID, "tokenizer: the text needs %zu ids; capacity is %zu", *n, capacity);
    return US_OK;
}

/* A growable string for decode. */
typedef struct {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_append(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Appends SentencePiece's decoding of ids[0, n). */
static us_status decode_run(const us_tokenizer *tok, const int32_t *ids, size_t n, strbuf *b, us_error *err)
{
    if (n == 0) return US_OK;
    char *s = NULL;
    size_t sl = 0;
    us_status st = us_sp_proc_decode(tok->sp, ids, n, &s, &sl, err);
    if (!st && sb_append(b, s, sl)) st = us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory to decode");
    free(s);
    return st;
}

us_status us_tokenizer_decode(const us_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                              char **text, size_t *len, us_error *err)
{
    if (!tok || !text || (!ids && n))
        return us_error_set(err, US_ERR_INVALID, "tokenizer: decode needs a tokenizer, ids and text");
    *text = NULL;
    if (len) *len = 0;
    strbuf b = {0};
    if (sb_append(&b, "", 0)) return us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory to decode");
    size_t run = 0; /* ids[run, i) are plain pieces not yet decoded */
    us_status st = US_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int32_t id = ids[i];
        const char *special = NULL;
        if (id >= tok->pieces.n || id < 0) {
            const us_special *s = us_special_table_by_id(&tok->specials, id);
            if (!s) {
                st = us_error_set(err, US_ERR_INVALID, "tokenizer: id %d (at %zu) is outside the %d-piece vocabulary",
                                  (int)id, i, tok->pieces.n);
                break;
            }
            special = flags & US_TOK_DECODE_CONTROL ? s->text : "";
        } else if (tok->pieces.types[id] == US_SP_CONTROL && (flags & US_TOK_DECODE_CONTROL)) {
            special = tok->pieces.pieces[id];
        }
        if (!special) continue;
        st = decode_run(tok, ids + run, i - run, &b, err);
        if (!st && sb_append(&b, special, strlen(special)))
            st = us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory to decode");
        run = i + 1;
    }
    if (!st) st = decode_run(tok, ids + run, n - run, &b, err);
    if (st) {
        free(b.p);
        return st;
    }
    *text = b.p;
    if (len) *len = b.len;
    return US_OK;
}
