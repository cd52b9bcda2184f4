/* document.c: validated document reading and atomic output files. */
#include "document.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

size_t us_utf8_valid_prefix(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        const unsigned c = s[i];
        size_t n;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (i + n > len) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

us_status us_document_read(const char *path, size_t max_bytes, char **text, size_t *len, us_error *err)
{
    *text = NULL, *len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return us_error_set(err, US_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return us_error_set(err, US_ERR_INVALID, "%s: is a directory", path);
    if (!S_ISREG(sb.st_mode)) return us_error_set(err, US_ERR_INVALID, "%s: not a regular file", path);
    if ((unsigned long long)sb.st_size > (unsigned long long)max_bytes)
        return us_error_set(err, US_ERR_INVALID, "%s: %lld bytes, more than the %zu-byte limit", path,
                            (long long)sb.st_size, max_bytes);
    FILE *f = fopen(path, "rb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: %s", path, strerror(errno));
    const size_t size = (size_t)sb.st_size;
    char *b = malloc(size + 1);
    if (!b) {
        fclose(f);
        return us_error_set(err, US_ERR_NOMEM, "%s: no memory for %zu bytes", path, size);
    }
    const size_t got = fread(b, 1, size, f);
    const int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(b);
        return us_error_set(err, US_ERR_IO, "%s: read %zu of %zu bytes%s", path, got, size,
                            bad ? ": read error" : " (the file shrank)");
    }
    b[size] = '\0';
    size_t off = size >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3) ? 3 : 0, n = size - off;
    const char *nul = memchr(b + off, '\0', n);
    us_status s = US_OK;
    if (nul) {
        s = us_error_set(err, US_ERR_INVALID, "%s: binary file (a NUL byte at offset %zu), not a text document", path,
                         (size_t)(nul - b));
    } else {
        const size_t ok = us_utf8_valid_prefix(b + off, n);
        if (ok < n) {
            s = us_error_set(err, US_ERR_INVALID, "%s: not UTF-8 text (invalid byte 0x%02X at offset %zu)", path,
                             (unsigned)(unsigned char)b[off + ok], off + ok);
        } else {
            size_t i = off;
            while (i < size && strchr(" \t\r\n\f\v", b[i])) i++;
            if (i == size) s = us_error_set(err, US_ERR_INVALID, "%s: empty document", path);
        }
    }
    if (s) {
        free(b);
        return s;
    }
    if (off) memmove(b, b + off, n + 1);
    *text = b, *len = n;
    return US_OK;
}

us_status us_atomic_write(const char *path, const void *data, size_t len, us_error *err)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.partial", dir_len, path, slash ? slash + 1 : path) >= (int)sizeof tmp)
        return us_error_set(err, US_ERR_INVALID, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    int e = 0;
    if (len && fwrite(data, 1, len, f) != len) e = errno ? errno : EIO;
    if (!e && fflush(f) != 0) e = errno;
    if (!e && fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        remove(tmp);
        return us_error_set(err, US_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return US_OK;
}
