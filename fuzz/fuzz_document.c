/* fuzz_document.c: us_document_read (the summarizer's input: size limit, NUL, UTF-8, BOM, blank). */
#include "fuzz_entry.h"

#include "document.h"

#include <stdlib.h>

int us_fuzz_document(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    char *text = NULL;
    size_t len = 0;
    us_error err;
    us_status s = us_document_read(path, 1 << 20, &text, &len, &err);
    if (!s && (len > size || text[len] != '\0')) __builtin_trap(); /* NUL-terminated, no longer than the file */
    free(text);
    (void)us_utf8_valid_prefix((const char *)data, size);
    return s;
}
