/* tokenizer_special.c: finding special pieces in text (see tokenizer_special.h).
 *
 * Matching is on raw bytes of the input, before SentencePiece's normalization; Gemma's normalizer is
 * the identity, so a special's text matches exactly where SentencePiece would see it. A group holds
 * every special starting with one byte, longest first, so the first match at a position is the longest.
 */
#include "tokenizer_special.h"

#include <stdlib.h>
#include <string.h>

us_status us_special_table_add(us_special_table *t, const char *text, size_t len, int32_t id, us_error *err)
{
    if (!text || len == 0) return us_error_set(err, US_ERR_INVALID, "tokenizer: a special token needs text");
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        us_special *items = realloc(t->items, (size_t)cap * sizeof *items);
        if (!items) return us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory for %d special tokens", cap);
        t->items = items;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory for a special token");
    memcpy(copy, text, len);
    copy[len] = '\0';
    t->items[t->n++] = (us_special){copy, len, id};
    return US_OK;
}

static int cmp_special(const void *pa, const void *pb)
{
    const us_special *a = pa, *b = pb;
    unsigned char ca = (unsigned char)a->text[0], cb = (unsigned char)b->text[0];
    if (ca != cb) return ca < cb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1; /* longest first */
    int c = memcmp(a->text, b->text, a->len);
    if (c) return c;
    return (a->id > b->id) - (a->id < b->id);
}

void us_special_table_index(us_special_table *t)
{
    if (t->n) qsort(t->items, (size_t)t->n, sizeof *t->items, cmp_special);
    int i = 0;
    for (int b = 0; b < 256; b++) {
        t->start[b] = i;
        while (i < t->n && (unsigned char)t->items[i].text[0] == b) i++;
    }
    t->start[256] = t->n;
}

void us_special_table_free(us_special_table *t)
{
    for (int i = 0; i < t->n; i++) free((void *)t->items[i].text);
    free(t->items);
    memset(t, 0, sizeof *t);
}

int us_special_table_find(const us_special_table *t, const char *text, size_t len, size_t *pos)
{
    if (t->n == 0) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        for (int k = t->start[c]; k < t->start[c + 1]; k++) {
            const us_special *s = &t->items[k];
            if (s->len <= len - i && memcmp(text + i, s->text, s->len) == 0) {
                *pos = i;
                return k;
            }
        }
    }
    return -1;
}

const us_special *us_special_table_by_id(const us_special_table *t, int32_t id)
{
    for (int i = 0; i < t->n; i++)
        if (t->items[i].id == id) return &t->items[i];
    return NULL;
}
