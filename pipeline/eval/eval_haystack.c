/* eval_haystack.c: see eval_haystack.h. RULER's "essay" haystack joins words and places needles at
 * sentence boundaries (nltk's sent_tokenize); a word ending in . ! or ? (before closing quotes or
 * brackets) ends a sentence here, which is close enough for filler. */
#include "eval_haystack.h"

#include "document.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct us_eval_haystack {
    char name[512];
    bool noise;
    char *text;       /* words separated by one space */
    size_t *word_off; /* n_words offsets into text */
    uint32_t *word_len;
    int64_t n_words;
    bool *sentence_end; /* n_words: the word ends a sentence */
};

void us_eval_haystack_free(us_eval_haystack **ph)
{
    if (!ph || !*ph) return;
    us_eval_haystack *h = *ph;
    free(h->text), free(h->word_off), free(h->word_len), free(h->sentence_end);
    free(h);
    *ph = NULL;
}

bool us_eval_haystack_is_noise(const us_eval_haystack *h)
{
    return h->noise;
}
const char *us_eval_haystack_name(const us_eval_haystack *h)
{
    return h->name;
}
int64_t us_eval_haystack_words(const us_eval_haystack *h)
{
    return h->noise ? 0 : h->n_words;
}

static bool ends_sentence(const char *w, size_t n)
{
    while (n > 0 && strchr("\"')]", w[n - 1]))
        n--;
    /* U+201D and U+2019 (closing curly quotes) are 3 bytes in UTF-8 */
    while (n >= 3 && (!memcmp(w + n - 3, "\xE2\x80\x9D", 3) || !memcmp(w + n - 3, "\xE2\x80\x99", 3)))
        n -= 3;
    return n > 0 && (w[n - 1] == '.' || w[n - 1] == '!' || w[n - 1] == '?');
}

us_status us_eval_haystack_from_text(const char *src, size_t len, const char *name, us_eval_haystack **out,
                                     us_error *err)
{
    *out = NULL;
    us_eval_haystack *h = calloc(1, sizeof *h);
    if (!h) return us_error_set(err, US_ERR_NOMEM, "no memory for the haystack");
    snprintf(h->name, sizeof h->name, "%s", name ? name : "text");
    h->text = malloc(len + 1);
    size_t cap_words = len / 2 + 1, n = 0;
    h->word_off = malloc(cap_words * sizeof *h->word_off);
    h->word_len = malloc(cap_words * sizeof *h->word_len);
    if (!h->text || !h->word_off || !h->word_len) {
        us_eval_haystack_free(&h);
        return us_error_set(err, US_ERR_NOMEM, "no memory for a %zu-byte haystack", len);
    }
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && isspace((unsigned char)src[i]))
            i++;
        size_t j = i;
        while (j < len && !isspace((unsigned char)src[j]))
            j++;
        if (j > i) {
            if (n > 0) h->text[w++] = ' ';
            h->word_off[n] = w;
            h->word_len[n] = (uint32_t)(j - i);
            memcpy(h->text + w, src + i, j - i);
            w += j - i;
            n++;
        }
        i = j;
    }
    h->text[w] = '\0';
    h->n_words = (int64_t)n;
    if (n == 0) {
        us_eval_haystack_free(&h);
        return us_error_set(err, US_ERR_INVALID, "haystack %s: no words", name ? name : "text");
    }
    h->sentence_end = malloc(n * sizeof *h->sentence_end);
    if (!h->sentence_end) {
        us_eval_haystack_free(&h);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the haystack");
    }
    for (size_t k = 0; k < n; k++)
        h->sentence_end[k] = ends_sentence(h->text + h->word_off[k], h->word_len[k]);
    *out = h;
    return US_OK;
}

us_status us_eval_haystack_load(const char *spec, us_eval_haystack **out, us_error *err)
{
    *out = NULL;
    if (!spec || !strcmp(spec, "noise")) {
        us_eval_haystack *h = calloc(1, sizeof *h);
        if (!h) return us_error_set(err, US_ERR_NOMEM, "no memory for the haystack");
        snprintf(h->name, sizeof h->name, "noise");
        h->noise = true;
        *out = h;
        return US_OK;
    }
    char *text = NULL;
    size_t len = 0;
    us_status s = us_document_read(spec, (size_t)1 << 30, &text, &len, err);
    if (s) return s;
    s = us_eval_haystack_from_text(text, len, spec, out, err);
    free(text);
    return s;
}

/* Needle order by insertion index, stable. */
typedef struct {
    int64_t at;
    int i;
} slot;

static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    return x->i - y->i;
}

static int64_t insertion_index(double depth, int64_t count)
{
    if (!(depth > 0.0)) return 0;
    if (depth >= 1.0) return count;
    int64_t k = (int64_t)(depth * (double)count);
    return k > count ? count : k;
}

us_status us_eval_haystack_render(const us_eval_haystack *h, uint64_t start, int64_t units,
                                  const us_eval_needle *needles, int n, us_strbuf *out, double *pos, us_error *err)
{
    if (units < 0 || n < 0 || (n > 0 && !needles))
        return us_error_set(err, US_ERR_INVALID, "haystack render: %lld units, %d needles", (long long)units, n);
    slot *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    size_t *npos = malloc((size_t)(n > 0 ? n : 1) * sizeof *npos);
    int64_t *sent_start = NULL; /* word index (relative to start) of each sentence's first word */
    if (!order || !npos) goto nomem;
    size_t hay = 0; /* haystack bytes written so far (words or paragraphs, not needles or separators) */

    if (h->noise) {
        for (int i = 0; i < n; i++)
            order[i] = (slot){insertion_index(needles[i].depth, units), i};
        qsort(order, (size_t)n, sizeof *order, slot_cmp);
        int k = 0;
        bool first = true;
        for (int64_t u = 0; u <= units; u++) {
            for (; k < n && order[k].at == u; k++) {
                if (!first) us_strbuf_add(out, "\n", 1);
                npos[order[k].i] = hay;
                us_strbuf_puts(out, needles[order[k].i].text);
                first = false;
            }
            if (u == units) break;
            if (!first) us_strbuf_add(out, "\n", 1);
            us_strbuf_puts(out, US_EVAL_NOISE);
            hay += sizeof US_EVAL_NOISE - 1;
            first = false;
        }
    } else {
        /* sentences of the taken words; a trailing unfinished sentence counts as one */
        sent_start = malloc((size_t)(units + 1) * sizeof *sent_start);
        if (!sent_start) goto nomem;
        int64_t n_sent = 0;
        for (int64_t k = 0; k < units; k++) {
            const int64_t w = (int64_t)((start + (uint64_t)k) % (uint64_t)h->n_words);
            if (k == 0 || h->sentence_end[(w + h->n_words - 1) % h->n_words]) sent_start[n_sent++] = k;
        }
        sent_start[n_sent] = units;
        for (int i = 0; i < n; i++)
            order[i] = (slot){insertion_index(needles[i].depth, n_sent), i};
        qsort(order, (size_t)n, sizeof *order, slot_cmp);
        int k = 0;
        bool first = true;
        for (int64_t s = 0; s <= n_sent; s++) {
            for (; k < n && order[k].at == s; k++) {
                if (!first) us_strbuf_add(out, " ", 1);
                npos[order[k].i] = hay;
                us_strbuf_puts(out, needles[order[k].i].text);
                first = false;
            }
            if (s == n_sent) break;
            for (int64_t q = sent_start[s]; q < sent_start[s + 1]; q++) {
                const int64_t w = (int64_t)((start + (uint64_t)q) % (uint64_t)h->n_words);
                if (!first) us_strbuf_add(out, " ", 1);
                us_strbuf_add(out, h->text + h->word_off[w], h->word_len[w]);
                hay += h->word_len[w];
                first = false;
            }
        }
    }
    if (out->oom) goto nomem;
    if (pos)
        for (int i = 0; i < n; i++)
            pos[i] = hay > 0 ? (double)npos[i] / (double)hay : 0.0;
    free(order), free(npos), free(sent_start);
    return US_OK;
nomem:
    free(order), free(npos), free(sent_start);
    return us_error_set(err, US_ERR_NOMEM, "no memory for a %lld-unit context", (long long)units);
}
