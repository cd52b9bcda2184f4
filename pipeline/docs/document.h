/* document.h: reading a text or Markdown document someone handed us, and writing outputs so that a
 * crash or a full disk never leaves a half-written file under the final name.
 *
 *   char *text = NULL;  size_t len = 0;
 *   if (us_document_read("notes.md", 64 << 20, &text, &len, &err)) puts(err.msg);  // names the file
 *   us_atomic_write("out/notes.md.summary.md", text, len, &err);
 *   free(text);
 */
#ifndef UNISPARSE_DOCUMENT_H
#define UNISPARSE_DOCUMENT_H

#include "unisparse/attention.h"

#include <stddef.h>

/* Reads a whole document of at most max_bytes. Errors, each naming the file: missing or unreadable,
 * a directory, larger than max_bytes, empty (nothing but whitespace), binary (a NUL byte), not UTF-8
 * (the byte offset of the first bad sequence). A leading UTF-8 BOM is dropped; CRLF is kept. */
us_status us_document_read(const char *path, size_t max_bytes, char **text, size_t *len, us_error *err);

/* Offset of the first byte that does not begin or continue a valid UTF-8 sequence (overlongs,
 * surrogates and code points above U+10FFFF are invalid), or len when all of it is valid. */
size_t us_utf8_valid_prefix(const char *s, size_t len);

/* Writes data to path through a temporary file in the same directory (".NAME.partial"), flushed
 * to disk and renamed over path: readers see the old file or the whole new one. On failure (disk
 * full, permissions) the temporary file is removed and the message names path and the reason. */
us_status us_atomic_write(const char *path, const void *data, size_t len, us_error *err);

#endif
