/* eval_haystack.h: the filler text that long-context tasks hide their needles in.
 *
 *   us_eval_haystack *h = NULL;
 *   us_eval_haystack_load("data/haystack.txt", &h, &err);      // or "noise"
 *   us_eval_needle nd = {"One of the special magic numbers for x is: 1234567.", 0.5};
 *   us_strbuf ctx = {0};  double pos;
 *   us_eval_haystack_render(h, start, 2000, &nd, 1, &ctx, &pos, &err);   // 2000 words, needle mid-way
 *   free(ctx.s);  us_eval_haystack_free(&h);
 *
 * Two kinds, as in RULER: a real text (its words, whitespace runs collapsed to one space, taken
 * cyclically from a start word; needles go between sentences) or "noise", RULER's repeated
 * paragraph "The grass is green. The sky is blue. ..." (one unit per paragraph, a line each; needles
 * go between lines). A needle at depth d in [0, 1] goes before sentence (or line) floor(d * count):
 * 0 is the very start of the context and 1 its end. */
#ifndef UNISPARSE_EVAL_HAYSTACK_H
#define UNISPARSE_EVAL_HAYSTACK_H

#include "eval_strbuf.h"
#include "unisparse/attention.h"

#include <stdbool.h>
#include <stdint.h>

#define US_EVAL_NOISE "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

typedef struct us_eval_haystack us_eval_haystack;

typedef struct {
    const char *text; /* one sentence */
    double depth;     /* [0, 1] */
} us_eval_needle;

/* spec "noise", or a UTF-8 text file (errors name it: missing, empty, binary, not UTF-8). */
us_status us_eval_haystack_load(const char *spec, us_eval_haystack **out, us_error *err);
/* From text in memory (copied); name labels it in reports. */
us_status us_eval_haystack_from_text(const char *text, size_t len, const char *name, us_eval_haystack **out,
                                     us_error *err);
void us_eval_haystack_free(us_eval_haystack **h);

bool us_eval_haystack_is_noise(const us_eval_haystack *h);
/* "noise" or the file's path. */
const char *us_eval_haystack_name(const us_eval_haystack *h);
/* Words of a text (0 for noise, which has no end). */
int64_t us_eval_haystack_words(const us_eval_haystack *h);

/* Appends to out the context of `units` haystack units (words of a text from word start % words
 * on, wrapping around; noise paragraphs) with the n needles inserted at their depths (needles at
 * one place keep their order). pos[i] (when pos is not NULL) receives needle i's realised depth:
 * the haystack bytes before it over all haystack bytes (other needles and separators not counted),
 * which differs from the requested depth by at most one sentence or paragraph. */
us_status us_eval_haystack_render(const us_eval_haystack *h, uint64_t start, int64_t units,
                                  const us_eval_needle *needles, int n, us_strbuf *out, double *pos, us_error *err);

#endif
