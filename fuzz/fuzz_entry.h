/* fuzz_entry.h: one entry point per parser of untrusted bytes, shared by the libFuzzer targets
 * (fuzz/fuzz_main.c, built with -DUS_BUILD_FUZZ=ON) and the regression test
 * (tests/test_fuzz_regressions.c, built in every normal build).
 *
 *   int r = us_fuzz_gguf(bytes, size);   // 0: the input parsed; < 0: the us_status that rejected it
 *
 * Each entry is deterministic and frees everything it allocates whatever the input; a crash, a
 * sanitizer report, a leak or a hang inside one is a bug in the parser. Parsers that read a path get
 * the bytes through us_fuzz_file_path (fuzz_tmpfile.c). */
#ifndef UNISPARSE_FUZZ_ENTRY_H
#define UNISPARSE_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

int us_fuzz_safetensors(const uint8_t *data, size_t size);  /* us_safetensors_open + every tensor */
int us_fuzz_gguf(const uint8_t *data, size_t size);         /* metadata, tensor table, rows, gemma3 config */
int us_fuzz_config_json(const uint8_t *data, size_t size);  /* config.json: text and vision configs */
int us_fuzz_qkv_file(const uint8_t *data, size_t size);     /* us_qkv_load */
int us_fuzz_sp_from_gguf(const uint8_t *data, size_t size); /* SentencePiece from a GGUF vocabulary */
int us_fuzz_video(const uint8_t *data, size_t size);        /* open + sample 2 frames (FFmpeg) */
int us_fuzz_image(const uint8_t *data, size_t size);        /* us_image_load_memory + preprocess */
int us_fuzz_document(const uint8_t *data, size_t size);     /* us_document_read */
int us_fuzz_tokenizer_model(const uint8_t *data, size_t size); /* us_tokenizer_load + encode/decode */
int us_fuzz_hf_dir(const uint8_t *data, size_t size);       /* index.json (+ a shard) of a HF directory */

/* The path of a file that holds exactly data[0, size): one unlinked temporary file per process,
 * rewritten on every call (/proc/self/fd/N). NULL when it cannot be written. */
const char *us_fuzz_file_path(const uint8_t *data, size_t size);

/* For parsers that read a folder: one directory per process (mkdtemp, under TMPDIR or /tmp), emptied
 * and removed at exit (a crashed process leaves it behind). us_fuzz_dir_write puts exactly
 * data[0, size) into <dir>/name, us_fuzz_dir_remove deletes <dir>/name if there; both return 0 on
 * success. NULL / -1 when the directory cannot be made. */
const char *us_fuzz_dir(void);
int us_fuzz_dir_write(const char *name, const uint8_t *data, size_t size);
int us_fuzz_dir_remove(const char *name);

/* Encodes and decodes a fixed text with tok and looks its first pieces up both ways (shared by the
 * tokenizer targets; fuzz_tokenizer_round_trip.c). */
struct us_tokenizer;
void us_fuzz_tokenizer_round_trip(const struct us_tokenizer *tok);

#endif
