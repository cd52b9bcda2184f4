/* eval_strbuf.c: see eval_strbuf.h. */
#include "eval_strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool us_strbuf_reserve(us_strbuf *b, size_t n)
{
    if (b->oom) return false;
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void us_strbuf_add(us_strbuf *b, const char *s, size_t n)
{
    if (!us_strbuf_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void us_strbuf_puts(us_strbuf *b, const char *s)
{
    us_strbuf_add(b, s, strlen(s));
}

void us_strbuf_printf(us_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !us_strbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void us_strbuf_clear(us_strbuf *b)
{
    b->len = 0;
    if (b->s) b->s[0] = '\0';
}

char *us_strbuf_take(us_strbuf *b)
{
    char *s = b->oom ? NULL : b->s;
    if (b->oom)
        free(b->s);
    else if (!s)
        s = calloc(1, 1); /* never appended to: an empty string, not NULL */
    *b = (us_strbuf){0};
    return s;
}
