/* tokenizer.h: the text tokenizer of the Gemma 3 runtime (SentencePiece, special pieces split in C).
 *
 *   us_tokenizer *tok = NULL;
 *   us_error err;
 *   if (us_tokenizer_load("tokenizer.model", &tok, &err)) { fprintf(stderr, "%s\n", err.msg); ... }
 *   int32_t ids[4096];
 *   size_t n;
 *   ids[0] = us_tokenizer_piece_to_id(tok, "<bos>");            // the caller adds BOS, once
 *   us_tokenizer_encode(tok, prompt, strlen(prompt), ids + 1, 4095, &n, &err);
 *   us_tokenizer_free(&tok);
 *
 * Encoding: every CONTROL or USER_DEFINED piece of the model (<bos>, <start_of_turn>, ...) and every
 * token added with us_tokenizer_add_special (e.g. <image_soft_token>, id 262144, which Gemma 3's
 * tokenizer.model lacks) is found in the text (leftmost first, the longest on a tie) and emitted by id;
 * the spans between them are encoded by SentencePiece. Nothing is added at either end.
 * Every function returns US_OK or a negative us_status with a message in err; nothing prints.
 */
#ifndef UNISPARSE_TOKENIZER_H
#define UNISPARSE_TOKENIZER_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct us_tokenizer us_tokenizer;

/* From serialized ModelProto bytes (a tokenizer.model's content, or us_sp_model_proto_build's
 * output); the bytes are not kept. */
us_status us_tokenizer_create_from_proto(const void *bytes, size_t len, us_tokenizer **tok, us_error *err);
/* From a tokenizer.model file; errors name the path. */
us_status us_tokenizer_load(const char *path, us_tokenizer **tok, us_error *err);
void us_tokenizer_free(us_tokenizer **tok);

/* The number of pieces in the model (ids 0 .. size-1); added specials lie outside it. */
int32_t us_tokenizer_vocab_size(const us_tokenizer *tok);
/* The id of a piece (or added special), or -1 when there is none. */
int32_t us_tokenizer_piece_to_id(const us_tokenizer *tok, const char *piece);
/* The text of a piece or added special, or NULL for an unknown id. */
const char *us_tokenizer_id_to_piece(const us_tokenizer *tok, int32_t id);
/* The us_sp_piece_type of a piece (US_SP_CONTROL for added specials), or 0 for an unknown id. */
int us_tokenizer_piece_type(const us_tokenizer *tok, int32_t id);

/* Adds a special token outside the model's vocabulary: text is split out of encoded input and id
 * emitted for it; id must be >= vocab size and unused. */
us_status us_tokenizer_add_special(us_tokenizer *tok, const char *text, int32_t id, us_error *err);

/* Encodes text[0, len) into ids[0, *n). With ids == NULL and capacity == 0 it only counts (*n).
 * When capacity is too small it returns US_ERR_INVALID with *n set to the count needed. */
us_status us_tokenizer_encode(const us_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                              size_t capacity, size_t *n, us_error *err);

enum {
    US_TOK_DECODE_CONTROL = 1 /* write CONTROL pieces (<bos>, <eos>, added specials) as their text */
};

/* Decodes ids into a malloc'd NUL-terminated string (*len bytes; the caller frees it). As in
 * SentencePiece, USER_DEFINED pieces are written as text and CONTROL pieces are dropped unless flags
 * has US_TOK_DECODE_CONTROL. An id outside the model and the added specials is an error. */
us_status us_tokenizer_decode(const us_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                              char **text, size_t *len, us_error *err);

#ifdef __cplusplus
}
#endif

#endif
