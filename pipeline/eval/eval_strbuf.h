/* eval_strbuf.h: a growable NUL-terminated string for the prompt builders and report writers.
 *
 *   us_strbuf b = {0};
 *   us_strbuf_add(&b, "text", 4);  us_strbuf_printf(&b, "%d", 7);
 *   if (b.oom) ...;   free(b.s);
 *
 * An allocation failure sets oom and makes every later call a no-op, so that a writer checks once at
 * the end instead of after every append. */
#ifndef UNISPARSE_EVAL_STRBUF_H
#define UNISPARSE_EVAL_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *s; /* owned, NUL-terminated when len > 0 or after any append */
    size_t len, cap;
    bool oom;
} us_strbuf;

/* Makes room for n more bytes and the NUL. */
bool us_strbuf_reserve(us_strbuf *b, size_t n);
void us_strbuf_add(us_strbuf *b, const char *s, size_t n);
void us_strbuf_puts(us_strbuf *b, const char *s);
void us_strbuf_printf(us_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Empties b, keeping its memory. */
void us_strbuf_clear(us_strbuf *b);
/* Hands the string over (the caller frees it; "" when nothing was added) and leaves b empty; NULL
 * after an allocation failure. */
char *us_strbuf_take(us_strbuf *b);

#endif
