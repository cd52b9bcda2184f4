/* sp_shim.h: the C view of the SentencePiece C++ library (implemented in tokenizer_shim.cc).
 *
 * Why a shim: SentencePiece is C++ only; this is the project's one piece of C++, kept to plain
 * forwarding so that everything else (file reading, special pieces, buffers, errors) stays in C.
 * Internal to encoders/: callers use tokenizer.h.
 */
#ifndef UNISPARSE_SP_SHIM_H
#define UNISPARSE_SP_SHIM_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct us_sp_proc us_sp_proc;

/* Loads serialized ModelProto bytes; what names the source in error messages. */
us_status us_sp_proc_create(const void *bytes, size_t len, const char *what, us_sp_proc **out, us_error *err);
void us_sp_proc_free(us_sp_proc *p);
int32_t us_sp_proc_size(const us_sp_proc *p);
/* SentencePiece's id for piece: unk_id when the model lacks it (the caller checks the text). */
int32_t us_sp_proc_piece_to_id(const us_sp_proc *p, const char *piece);

/* Encodes text[0, len) (no BOS/EOS) and appends the ids at ids[*n]: only those below cap are
 * written, but *n advances by the full count, so the caller can size a retry. */
us_status us_sp_proc_encode(const us_sp_proc *p, const char *text, size_t len, int32_t *ids, size_t cap,
                            size_t *n, us_error *err);

/* Decodes ids (all in [0, size)) into a malloc'd NUL-terminated string. */
us_status us_sp_proc_decode(const us_sp_proc *p, const int32_t *ids, size_t n, char **out, size_t *out_len,
                            us_error *err);

#ifdef __cplusplus
}
#endif

#endif
