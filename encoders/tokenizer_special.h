/* tokenizer_special.h: the table of special pieces that encoding splits out of text (internal).
 *
 * Why in C and not left to SentencePiece: SentencePiece never matches CONTROL pieces in text (so
 * "<bos>" or an image token written in a prompt would be spelled out byte by byte), and tokens added
 * outside the model (Gemma 3's <image_soft_token>) are unknown to it. Entries are bucketed by their
 * first byte, each bucket longest first, so a scan costs one bucket lookup per byte of text.
 */
#ifndef UNISPARSE_TOKENIZER_SPECIAL_H
#define UNISPARSE_TOKENIZER_SPECIAL_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *text; /* owned by the table */
    size_t len;
    int32_t id;
} us_special;

typedef struct {
    us_special *items; /* grouped by first byte, longest first inside a group */
    int n, cap;
    int start[257];    /* items of first byte b: [start[b], start[b + 1]) */
} us_special_table;

/* Adds a copy of text[0, len) (len > 0); find and by_id see it after the next us_special_table_index. */
us_status us_special_table_add(us_special_table *t, const char *text, size_t len, int32_t id, us_error *err);
/* Sorts the entries into their groups (after a batch of adds). */
void us_special_table_index(us_special_table *t);
void us_special_table_free(us_special_table *t);

/* The leftmost special in text[0, len), the longest of those starting there: its index in items,
 * with its offset in *pos; -1 when there is none. */
int us_special_table_find(const us_special_table *t, const char *text, size_t len, size_t *pos);

/* The entry with this id, or NULL. */
const us_special *us_special_table_by_id(const us_special_table *t, int32_t id);

#endif
