/* sp_charsmap.c: us_sp_charsmap_check (sp_model_proto.h), a NormalizerSpec.precompiled_charsmap
 * checked before SentencePiece sees it.
 *
 * Why: SentencePiece trusts the blob. Its normalizer walks the trie (a Darts-clone double array)
 * without bounds checks and takes each rule's replacement as a C string at an offset stored in the
 * trie, so a hostile tokenizer.model makes it read outside the model's memory as soon as it
 * normalizes text (found by fuzz_tokenizer_model, FUZZING.md F7). This walks every state that some
 * input could reach, as Darts::DoubleArray::commonPrefixSearch does, and refuses the blob when a read
 * would leave the array or a replacement is not a NUL-terminated string inside the blob. Tries built
 * by Darts-clone pass: it allocates the array in whole blocks of 256 units, so every child a state's
 * 256 possible bytes lead to lies inside.
 *
 * Layout: u32 trie size in bytes | the trie (u32 units) | the replacements, NUL-terminated; little
 * endian. A unit: has_leaf bit 8, value bits 0-30, label bits 0-7 and 31 (so a leaf's value never
 * matches a byte), offset (unit >> 10) << (bit 9 ? 8 : 0).
 */
#include "sp_model_proto.h"

#include <stdlib.h>
#include <string.h>

static uint32_t unit_at(const uint8_t *trie, size_t i)
{
    const uint8_t *p = trie + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t unit_offset(uint32_t u) { return (size_t)(u >> 10) << ((u & (1u << 9)) >> 6); }

us_status us_sp_charsmap_check(const uint8_t *blob, size_t len, const char *what, const char *spec,
                               us_error *err)
{
    if (len == 0) return US_OK; /* no charsmap: SentencePiece normalizes nothing */
    if (len < 4)
        return us_error_set(err, US_ERR_FORMAT, "%s: %s: the precompiled charsmap is %zu bytes long", what, spec, len);
    const size_t trie_bytes = (size_t)unit_at(blob, 0);
    if (trie_bytes > len - 4 || trie_bytes < 4)
        return us_error_set(err, US_ERR_FORMAT, "%s: %s: the precompiled charsmap's trie (%zu bytes) does not fit its "
                            "%zu bytes", what, spec, trie_bytes, len);
    const uint8_t *trie = blob + 4;
    const size_t n = trie_bytes / 4; /* SentencePiece drops a partial unit too */
    const uint8_t *repl = trie + trie_bytes;
    const size_t repl_len = len - 4 - trie_bytes;

    /* Depth first over the states; a child position is entered once, so at most n states. */
    uint8_t *seen = calloc(n, 1);
    size_t *stack = malloc((n + 1) * sizeof *stack); /* the root, then each child once */
    if (!seen || !stack) {
        free(seen), free(stack);
        return us_error_set(err, US_ERR_NOMEM, "%s: no memory to check the %zu-unit charsmap trie", what, n);
    }
    us_status st = US_OK;
    size_t top = 0;
    stack[top++] = unit_offset(unit_at(trie, 0)); /* the root's base */
    while (top && !st) {
        const size_t base = stack[--top];
        if ((base | 0xFF) >= n) { /* base ^ c for some byte c */
            st = us_error_set(err, US_ERR_FORMAT, "%s: %s: the precompiled charsmap's trie points past its %zu units",
                              what, spec, n);
            break;
        }
        for (uint32_t c = 0; c < 256 && !st; c++) {
            const size_t child = base ^ c;
            const uint32_t u = unit_at(trie, child);
            if ((u & (0x80000000u | 0xFFu)) != c || seen[child]) continue;
            seen[child] = 1;
            const size_t next = child ^ unit_offset(u);
            if (u & (1u << 8)) { /* a rule ends here: its replacement's offset is the value at next */
                size_t v = next < n ? (size_t)(unit_at(trie, next) & 0x7FFFFFFFu) : (size_t)-1;
                if (next >= n || v >= repl_len || !memchr(repl + v, 0, repl_len - v))
                    st = us_error_set(err, US_ERR_FORMAT, "%s: %s: a precompiled charsmap rule's replacement lies "
                                      "outside the charsmap", what, spec);
            }
            stack[top++] = next;
        }
    }
    free(seen);
    free(stack);
    return st;
}
