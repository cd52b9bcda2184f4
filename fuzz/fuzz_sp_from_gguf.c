/* fuzz_sp_from_gguf.c: the tokenizer of a GGUF checkpoint (us_gemma3_tokenizer_from_gguf: the
 * vocabulary arrays -> sp_model_proto.c's ModelProto -> SentencePiece -> the special-piece table),
 * then an encode / decode round of a fixed text.
 *
 * Input: a whole GGUF file when it starts with "GGUF"; otherwise a vocabulary, from which a GGUF is
 * built in memory (so that most inputs reach the proto builder rather than the GGUF reader):
 *   u8 flags (bit k: write the k-th of bos, eos, unk, padding _token_id) | i8 ids[4] |
 *   lines separated by '\n', each: i8 type | i8 score (x 1/4) | the piece's bytes (may be empty). */
#include "fuzz_entry.h"

#include "gemma3_gguf.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PIECES 4096

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed;
} wbuf;

static void put(wbuf *b, const void *d, size_t n)
{
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le(wbuf *b, uint64_t v, int n)
{
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)n);
}

static void put_str(wbuf *b, const void *s, size_t n)
{
    put_le(b, n, 8);
    put(b, s, n);
}

static void put_key(wbuf *b, const char *key, uint32_t type)
{
    put_str(b, key, strlen(key));
    put_le(b, type, 4);
}

/* The GGUF of the vocabulary encoded in data (see the top of the file). */
static int build_gguf(const uint8_t *data, size_t size, wbuf *b)
{
    if (size < 5) return -1;
    const uint8_t flags = data[0];
    const char *id_keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                              "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const uint8_t *lines = data + 5, *end = data + size;
    /* the pieces: [start, stop) of each line */
    const uint8_t *start[MAX_PIECES], *stop[MAX_PIECES];
    int n = 0;
    for (const uint8_t *p = lines; p < end && n < MAX_PIECES;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        start[n] = p;
        stop[n] = nl ? nl : end;
        n++;
        p = nl ? nl + 1 : end;
    }
    int n_ids = 0;
    for (int k = 0; k < 4; k++) n_ids += (flags >> k) & 1;
    put(b, "GGUF", 4);
    put_le(b, 3, 4);
    put_le(b, 0, 8);             /* tensors */
    put_le(b, 4 + n_ids, 8);     /* kvs */
    put_key(b, "general.architecture", 8);
    put_str(b, "gemma3", 6);
    put_key(b, "tokenizer.ggml.tokens", 9);
    put_le(b, 8, 4);
    put_le(b, (uint64_t)n, 8);
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(stop[i] - start[i]);
        put_str(b, len >= 2 ? start[i] + 2 : start[i], len >= 2 ? len - 2 : 0);
    }
    put_key(b, "tokenizer.ggml.scores", 9);
    put_le(b, 6, 4);
    put_le(b, (uint64_t)n, 8);
    for (int i = 0; i < n; i++) {
        float f = stop[i] - start[i] >= 2 ? (float)(int8_t)start[i][1] / 4.0f : 0.0f;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_le(b, u, 4);
    }
    put_key(b, "tokenizer.ggml.token_type", 9);
    put_le(b, 5, 4);
    put_le(b, (uint64_t)n, 8);
    for (int i = 0; i < n; i++)
        put_le(b, (uint32_t)(int32_t)(stop[i] - start[i] >= 1 ? (int8_t)start[i][0] : 1), 4);
    for (int k = 0; k < 4; k++)
        if ((flags >> k) & 1) {
            put_key(b, id_keys[k], 5);
            put_le(b, (uint32_t)(int32_t)(int8_t)data[1 + k], 4);
        }
    return b->failed ? -1 : 0;
}

int us_fuzz_sp_from_gguf(const uint8_t *data, size_t size)
{
    wbuf b = {0};
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        put(&b, data, size);
    } else if (build_gguf(data, size, &b)) {
        free(b.p);
        return US_ERR_FORMAT;
    }
    const char *path = b.failed ? NULL : us_fuzz_file_path(b.p, b.n);
    free(b.p);
    if (!path) return US_ERR_IO;
    us_gguf *g = NULL;
    us_error err;
    us_status s = us_gguf_open(path, &g, &err);
    if (s) return s;
    us_tokenizer *tok = NULL;
    s = us_gemma3_tokenizer_from_gguf(g, &tok, &err);
    if (!s) us_fuzz_tokenizer_round_trip(tok);
    us_tokenizer_free(&tok);
    us_gguf_close(&g);
    return s;
}
