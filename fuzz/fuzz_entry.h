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

/* The path of a file that holds exactly data[0, size): one unlinked temporary file per process,
 * rewritten on every call (/proc/self/fd/N). NULL when it cannot be written. */
const char *us_fuzz_file_path(const uint8_t *data, size_t size);

#endif
