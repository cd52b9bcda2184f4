/* sp_model_proto.h: SentencePiece ModelProto bytes, written and read in C.
 *
 * Why: a GGUF checkpoint carries the vocabulary as arrays (tokens, scores, token types), not as a
 * tokenizer.model; SentencePiece only loads a serialized ModelProto, and Debian ships it without the
 * protobuf headers. So the proto is written here directly in protobuf wire format, with the field
 * numbers of sentencepiece_model.proto:
 *
 *   ModelProto      pieces = 1 (repeated SentencePiece), trainer_spec = 2, normalizer_spec = 3
 *   SentencePiece   piece = 1 (string), score = 2 (float), type = 3 (enum, default NORMAL)
 *   TrainerSpec     model_type = 3, vocab_size = 4, split_digits = 25, byte_fallback = 35,
 *                   allow_whitespace_only_pieces = 26, treat_whitespace_as_suffix = 24,
 *                   unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43,
 *                   unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48, unk_surface = 44
 *   NormalizerSpec  name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
 *                   escape_whitespaces = 5
 *
 * The reader goes the other way for the piece list only: the tokenizer needs each piece's type (the
 * SentencePiece C++ API cannot tell USER_DEFINED from NORMAL) to split special pieces out of text.
 *
 *   us_sp_settings s = us_sp_settings_gemma();
 *   uint8_t *proto; size_t len;
 *   if (us_sp_model_proto_build(pieces, scores, types, n, &s, &proto, &len, &err)) ...
 *   ... us_tokenizer_create_from_proto(proto, len, &tok, &err) ...; free(proto);
 */
#ifndef UNISPARSE_SP_MODEL_PROTO_H
#define UNISPARSE_SP_MODEL_PROTO_H

#include "unisparse/attention.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ModelProto.SentencePiece.Type; GGUF's tokenizer.ggml.token_type uses the same numbers. */
typedef enum {
    US_SP_NORMAL = 1,
    US_SP_UNKNOWN = 2,
    US_SP_CONTROL = 3,
    US_SP_USER_DEFINED = 4,
    US_SP_UNUSED = 5,
    US_SP_BYTE = 6
} us_sp_piece_type;

/* TrainerSpec.ModelType. */
typedef enum { US_SP_UNIGRAM = 1, US_SP_BPE = 2, US_SP_WORD = 3, US_SP_CHAR = 4 } us_sp_model_type;

/* The trainer and normalizer fields that change how a model encodes and decodes. */
typedef struct {
    us_sp_model_type model_type;
    bool byte_fallback;
    bool split_digits;
    bool allow_whitespace_only_pieces;
    bool treat_whitespace_as_suffix;
    int32_t unk_id, bos_id, eos_id, pad_id; /* -1: none */
    const char *normalizer_name;            /* "identity": no precompiled charsmap is needed */
    bool add_dummy_prefix;
    bool remove_extra_whitespaces;
    bool escape_whitespaces;                /* ' ' <-> U+2581 */
} us_sp_settings;

/* Gemma 3's tokenizer.model: BPE, byte fallback, digits split, whitespace-only pieces, pad 0,
 * eos 1, bos 2, unk 3, identity normalizer, no dummy prefix, whitespace kept and escaped. */
us_sp_settings us_sp_settings_gemma(void);

/* Serializes a ModelProto with n pieces into *out (malloc'd; the caller frees it). Checks: n > 0,
 * every piece non-empty, types 1..6, exactly one UNKNOWN piece and at unk_id, the other special ids
 * in [-1, n). */
us_status us_sp_model_proto_build(const char *const *pieces, const float *scores, const int *types,
                                  int n, const us_sp_settings *s, uint8_t **out, size_t *out_len,
                                  us_error *err);

/* The piece list of serialized ModelProto bytes. */
typedef struct {
    int n;
    char **pieces;   /* NUL-terminated copies */
    float *scores;
    int *types;      /* us_sp_piece_type */
} us_sp_pieces;

/* Parses the pieces of a serialized ModelProto; skips every other field but the normalizer specs'
 * charsmaps, which it checks (us_sp_charsmap_check). what names the source (a path) in messages. */
us_status us_sp_pieces_read(const uint8_t *bytes, size_t len, const char *what, us_sp_pieces *out,
                            us_error *err);
void us_sp_pieces_free(us_sp_pieces *p);

/* Checks a NormalizerSpec.precompiled_charsmap (spec names the field in messages), which
 * SentencePiece uses without bounds checks: every trie state reachable from some input must stay
 * inside the trie and every replacement inside the blob (sp_charsmap.c). us_sp_pieces_read checks the
 * charsmaps of normalizer_spec (3) and denormalizer_spec (5) this way. An empty blob passes. */
us_status us_sp_charsmap_check(const uint8_t *blob, size_t len, const char *what, const char *spec,
                               us_error *err);

#ifdef __cplusplus
}
#endif

#endif
