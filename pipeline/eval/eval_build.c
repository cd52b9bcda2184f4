/* eval_build.c: the text task builders (eval_tasks.h): draw the sample's facts from its seed, then
 * fit the haystack so that the counted prompt just fits the token budget.
 *
 * The templates are RULER's (scripts/data/synthetic/constants.py, niah.py, variable_tracking.py):
 * singular wording when one value is asked for, the answer prefix after the question, 7-digit
 * needle values, 5-letter variable names and 5-digit values for vt. Differences: keys are drawn
 * from a built-in adjective-noun list (RULER uses wonderwords' lists), vt has no in-context example,
 * and its statements go into the chosen haystack rather than always into noise. */
#include "eval_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: small, fast, and the same on every platform */
typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(rng *r, uint64_t n)
{
    return rng_next(r) % n;
}
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* clang-format off */
static const char *const g_adj[] = {
    "abundant", "adorable", "ancient",  "bitter",   "brave",    "bright",   "calm",     "careful",
    "cheerful", "clever",   "crooked",  "curious",  "damp",     "dapper",   "eager",    "elegant",
    "fancy",    "fierce",   "fragile",  "gentle",   "gigantic", "glossy",   "grumpy",   "hollow",
    "humble",   "icy",      "jolly",    "lavish",   "lively",   "lonely",   "mellow",   "modern",
    "nimble",   "noisy",    "obedient", "odd",      "plain",    "polite",   "proud",    "quaint",
    "quiet",    "rapid",    "rustic",   "scarce",   "shiny",    "silent",   "sleepy",   "tasteful",
    "tender",   "thirsty",  "tidy",     "vivid",    "wary",     "wealthy",  "wicked",   "zealous",
};
static const char *const g_noun[] = {
    "anchor",   "apple",    "badge",    "banjo",    "basket",   "beacon",   "bicycle",  "blanket",
    "bottle",   "bowl",     "bridge",   "bucket",   "cabinet",  "candle",   "canyon",   "castle",
    "chimney",  "compass",  "cottage",  "crayon",   "dolphin",  "drum",     "falcon",   "feather",
    "garden",   "glacier",  "hammer",   "harbor",   "helmet",   "island",   "jacket",   "kettle",
    "ladder",   "lantern",  "meadow",   "mirror",   "mountain", "needle",   "orchard",  "otter",
    "pebble",   "pencil",   "pillow",   "puzzle",   "quarry",   "rabbit",   "saddle",   "scarf",
    "spoon",    "teapot",   "thimble",  "tractor",  "trumpet",  "violin",   "wagon",    "whistle",
};
/* clang-format on */
#define N_ADJ  (sizeof g_adj / sizeof *g_adj)
#define N_NOUN (sizeof g_noun / sizeof *g_noun)

/* A sample before its haystack is sized: the text around the context and the needles. */
typedef struct {
    char head[512], tail[512], prefix[512];
    char needle_text[US_EVAL_MAX_NEEDLES][160];
    us_eval_needle needles[US_EVAL_MAX_NEEDLES];
    int n_needles;
    uint64_t start; /* first haystack word */
} spec;

static us_status render(const us_eval_haystack *h, const spec *sp, int64_t units, us_strbuf *q, double *pos,
                        us_error *err)
{
    us_strbuf_clear(q);
    us_strbuf_puts(q, sp->head);
    us_status s = us_eval_haystack_render(h, sp->start, units, sp->needles, sp->n_needles, q, pos, err);
    if (s) return s;
    us_strbuf_puts(q, sp->tail);
    return q->oom ? us_error_set(err, US_ERR_NOMEM, "no memory for a %lld-unit prompt", (long long)units) : US_OK;
}

static us_status measure(const us_eval_haystack *h, const us_eval_counter *c, const spec *sp, int64_t units,
                         us_strbuf *q, int64_t *tokens, us_error *err)
{
    us_status s = render(h, sp, units, q, NULL, err);
    return s ? s : c->count(c->user, q->s, sp->prefix, tokens, err);
}

/* The most units whose prompt has at most max tokens: a guess from two probes, a bracket around it
 * in steps of 2%, then bisection, so that a 32K prompt takes about a dozen counts. Every unit adds
 * at least one token, so max + 1 units never fit. */
static us_status fit(const us_eval_haystack *h, const us_eval_counter *c, const spec *sp, int64_t max, us_strbuf *q,
                     int64_t *units, us_error *err)
{
    int64_t t0 = 0, t1 = 0, t = 0;
    us_status s = measure(h, c, sp, 0, q, &t0, err);
    if (s) return s;
    if (t0 > max)
        return us_error_set(err, US_ERR_INVALID,
                            "the prompt without any haystack is %lld tokens, more than the %lld allowed: ask for a "
                            "longer length",
                            (long long)t0, (long long)max);
    int64_t lo = 0, hi = max + 1;
    int64_t probe = us_eval_haystack_is_noise(h) ? 8 : 128;
    if (probe >= hi) probe = hi - 1;
    if (probe > 0) {
        if ((s = measure(h, c, sp, probe, q, &t1, err))) return s;
        if (t1 > max) {
            hi = probe;
        } else {
            lo = probe;
            const double rate = (double)(t1 - t0) / (double)probe;
            int64_t g = rate > 0 ? probe + (int64_t)((double)(max - t1) / rate) : hi - 1;
            if (g >= hi) g = hi - 1;
            if (g < lo) g = lo;
            const int64_t step = g / 50 > 1 ? g / 50 : 1;
            while (g > lo && g < hi) {
                if ((s = measure(h, c, sp, g, q, &t, err))) return s;
                if (t <= max) {
                    lo = g;
                    g = g + step < hi ? g + step : hi;
                } else {
                    hi = g;
                    g = g - step > lo ? g - step : lo;
                }
            }
        }
    }
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if ((s = measure(h, c, sp, mid, q, &t, err))) return s;
        if (t <= max)
            lo = mid;
        else
            hi = mid;
    }
    *units = lo;
    return US_OK;
}

/* Sizes the haystack and fills out: question, answer prefix, counts, needle positions. The caller
 * has set out->expected. */
static us_status finish(const us_eval_haystack *h, const us_eval_counter *c, const us_eval_build_params *p,
                        const spec *sp, us_eval_sample *out, us_error *err)
{
    us_strbuf q = {0};
    int64_t units = 0, tokens = 0;
    us_status s = fit(h, c, sp, p->max_prompt_tokens, &q, &units, err);
    if (!s) s = render(h, sp, units, &q, out->needle_pos, err);
    if (!s) s = c->count(c->user, q.s, sp->prefix, &tokens, err);
    if (!s) {
        out->question = us_strbuf_take(&q);
        out->answer_prefix = strdup(sp->prefix);
        if (!out->question || !out->answer_prefix) s = us_error_set(err, US_ERR_NOMEM, "no memory for the prompt");
    }
    free(q.s);
    if (s) {
        us_eval_sample_free(out);
        return s;
    }
    out->depth = p->depth;
    out->n_needles = sp->n_needles;
    out->units = units;
    out->tokens = tokens;
    return US_OK;
}

static us_status check(const us_eval_task *t, const us_eval_counter *c, const us_eval_build_params *p,
                       us_eval_sample *out, us_error *err)
{
    memset(out, 0, sizeof *out);
    if (!c || !c->count || !p || !(p->depth >= 0.0 && p->depth <= 1.0) || p->max_prompt_tokens < 1)
        return us_error_set(err, US_ERR_INVALID, "%s: a token counter, depth in [0, 1] and a positive budget", t->name);
    if (t->needles_k < 1 || t->needles_v < 1 || t->needles_k * t->needles_v > US_EVAL_MAX_NEEDLES ||
        t->needles_v > US_EVAL_MAX_EXPECTED)
        return us_error_set(err, US_ERR_INVALID, "%s: %d keys x %d values", t->name, t->needles_k, t->needles_v);
    return US_OK;
}

/* Whether s is among the n strings of stride bytes each at seen. */
static bool taken(const char *seen, size_t stride, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(seen + (size_t)i * stride, s)) return true;
    return false;
}

us_status us_eval_build_niah(const us_eval_task *t, const us_eval_haystack *h, const us_eval_counter *c,
                             const us_eval_build_params *p, us_eval_sample *out, us_error *err)
{
    us_status s = check(t, c, p, out, err);
    if (s) return s;
    rng r = {p->seed};
    spec sp;
    memset(&sp, 0, sizeof sp);
    const int64_t words = us_eval_haystack_words(h);
    sp.start = words > 0 ? rng_below(&r, (uint64_t)words) : 0;
    char keys[US_EVAL_MAX_NEEDLES][32], values[US_EVAL_MAX_NEEDLES][16];
    int nk = 0, nv = 0;
    while (nk < t->needles_k) {
        char k[32]; /* the longest adjective and noun are 8 letters each */
        snprintf(k, sizeof k, "%.12s-%.12s", g_adj[rng_below(&r, N_ADJ)], g_noun[rng_below(&r, N_NOUN)]);
        if (!taken(&keys[0][0], sizeof keys[0], nk, k)) memcpy(keys[nk++], k, sizeof k);
    }
    for (int ki = 0; ki < t->needles_k; ki++)
        for (int vi = 0; vi < t->needles_v;) {
            char v[16];
            snprintf(v, sizeof v, "%07u", (unsigned)(1000000 + rng_below(&r, 9000000)));
            if (taken(&values[0][0], sizeof values[0], nv, v)) continue;
            memcpy(values[nv], v, sizeof v);
            snprintf(sp.needle_text[nv], sizeof sp.needle_text[nv],
                     "One of the special magic numbers for %.31s is: %.15s.", keys[ki], v);
            sp.needles[nv] = (us_eval_needle){sp.needle_text[nv], nv == 0 ? p->depth : rng_unit(&r)};
            nv++, vi++;
        }
    sp.n_needles = nv;
    const bool one = t->needles_v == 1;
    snprintf(sp.head, sizeof sp.head,
             "%s special magic %s hidden within the following text. Make sure to memorize it. I will quiz you "
             "about the %s afterwards.\n",
             one ? "A" : "Some", one ? "number is" : "numbers are", one ? "number" : "numbers");
    snprintf(sp.tail, sizeof sp.tail, "\nWhat %s the special magic %s for %s mentioned in the provided text?",
             one ? "is" : "are all", one ? "number" : "numbers", keys[0]);
    snprintf(sp.prefix, sizeof sp.prefix, "The special magic %s for %s mentioned in the provided text %s",
             one ? "number" : "numbers", keys[0], one ? "is" : "are");
    for (int vi = 0; vi < t->needles_v; vi++) {
        out->expected[vi] = strdup(values[vi]); /* key 0's values come first */
        if (!out->expected[vi]) {
            us_eval_sample_free(out);
            return us_error_set(err, US_ERR_NOMEM, "no memory");
        }
        out->n_expected = vi + 1;
    }
    return finish(h, c, p, &sp, out, err);
}

us_status us_eval_build_vt(const us_eval_task *t, const us_eval_haystack *h, const us_eval_counter *c,
                           const us_eval_build_params *p, us_eval_sample *out, us_error *err)
{
    us_status s = check(t, c, p, out, err);
    if (s) return s;
    const int nvar = t->needles_v + 1; /* hops + 1 */
    if (t->needles_k != 1 || nvar > US_EVAL_MAX_NEEDLES || nvar > US_EVAL_MAX_EXPECTED)
        return us_error_set(err, US_ERR_INVALID, "%s: one chain of at most %d variables", t->name, US_EVAL_MAX_NEEDLES);
    rng r = {p->seed};
    spec sp;
    memset(&sp, 0, sizeof sp);
    const int64_t words = us_eval_haystack_words(h);
    sp.start = words > 0 ? rng_below(&r, (uint64_t)words) : 0;
    char vars[US_EVAL_MAX_NEEDLES][8];
    int n = 0;
    while (n < nvar) {
        char v[8];
        for (int i = 0; i < 5; i++)
            v[i] = (char)('A' + rng_below(&r, 26));
        v[5] = '\0';
        if (!taken(&vars[0][0], sizeof vars[0], n, v)) memcpy(vars[n++], v, sizeof v);
    }
    const unsigned value = 10000 + (unsigned)rng_below(&r, 90000);
    double depth[US_EVAL_MAX_NEEDLES];
    for (int i = 0; i < nvar; i++)
        depth[i] = rng_unit(&r);
    for (int i = 1; i < nvar; i++) /* sorted, so that the chain reads in order */
        for (int j = i; j > 0 && depth[j] < depth[j - 1]; j--) {
            double x = depth[j];
            depth[j] = depth[j - 1], depth[j - 1] = x;
        }
    for (int i = 0; i < nvar; i++) {
        if (i == 0)
            snprintf(sp.needle_text[0], sizeof sp.needle_text[0], "VAR %s = %u", vars[0], value);
        else
            snprintf(sp.needle_text[i], sizeof sp.needle_text[i], "VAR %s = VAR %s", vars[i], vars[i - 1]);
        sp.needles[i] = (us_eval_needle){sp.needle_text[i], depth[i]};
        out->expected[i] = strdup(vars[i]);
        if (!out->expected[i]) {
            us_eval_sample_free(out);
            return us_error_set(err, US_ERR_NOMEM, "no memory");
        }
        out->n_expected = i + 1;
    }
    sp.n_needles = nvar;
    snprintf(sp.head, sizeof sp.head,
             "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n");
    snprintf(sp.tail, sizeof sp.tail,
             "\nQuestion: Find all variables that are assigned the value %u in the text above.", value);
    snprintf(sp.prefix, sizeof sp.prefix,
             "Answer: According to the chain(s) of variable assignment in the text above, %d variables are assigned "
             "the value %u, they are:",
             nvar, value);
    us_eval_build_params q = *p;
    q.depth = depth[0];
    return finish(h, c, &q, &sp, out, err);
}
