/* eval_tasks.c: the task table, list parsing, per-sample seeds and depths (eval_tasks.h). The
 * builders are in eval_build.c (text) and eval_video_task.c (video). */
#include "eval_tasks.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

us_status us_eval_build_niah(const us_eval_task *t, const us_eval_haystack *h, const us_eval_counter *c,
                             const us_eval_build_params *p, us_eval_sample *out, us_error *err);
us_status us_eval_build_video_needle(const us_eval_task *t, const us_eval_video_params *p, us_eval_sample *out,
                                     us_error *err);
us_status us_eval_build_vt(const us_eval_task *t, const us_eval_haystack *h, const us_eval_counter *c,
                           const us_eval_build_params *p, us_eval_sample *out, us_error *err);

/* Answer budgets: Gemma's tokenizer spells numbers digit by digit, so a 7-digit value is 7 tokens;
 * each budget holds the expected values with separators and a few tokens to spare. Small models
 * rarely stop after the answer, and every budgeted token is a decode step for every method. */
static const us_eval_task g_tasks[] = {
    {"niah_single", "one key-value needle in the haystack; answer its 7-digit value", US_EVAL_TEXT, 16,
     us_eval_build_niah, 1, 1, NULL},
    {"niah_multikey", "the queried needle among 3 needles with other keys", US_EVAL_TEXT, 16, us_eval_build_niah, 4, 1,
     NULL},
    {"niah_multivalue", "4 values for one key, scattered; answer all 4", US_EVAL_TEXT, 48, us_eval_build_niah, 1, 4,
     NULL},
    {"vt", "variable tracking: a chain of 5 assignments; name every variable holding the value", US_EVAL_TEXT, 32,
     us_eval_build_vt, 1, 4, NULL},
    /* the number is 2-3 tokens; the rest leaves room for a sentence around it */
    {"video_needle", "one frame of a video replaced by a frame showing a 2-3 digit number; answer the number",
     US_EVAL_VIDEO, 12, NULL, 1, 1, us_eval_build_video_needle},
};

int us_eval_task_count(void)
{
    return (int)(sizeof g_tasks / sizeof *g_tasks);
}

const us_eval_task *us_eval_task_at(int i)
{
    return i >= 0 && i < us_eval_task_count() ? &g_tasks[i] : NULL;
}

const us_eval_task *us_eval_task_find(const char *name)
{
    for (int i = 0; i < us_eval_task_count(); i++)
        if (!strcmp(g_tasks[i].name, name)) return &g_tasks[i];
    return NULL;
}

void us_eval_sample_free(us_eval_sample *s)
{
    if (!s) return;
    free(s->question), free(s->answer_prefix);
    for (int i = 0; i < s->n_expected; i++)
        free(s->expected[i]);
    memset(s, 0, sizeof *s);
}

/* Splits list at commas into items of at most 63 bytes; returns the count or -1 (empty item). */
static int split(const char *list, char items[][64], int cap)
{
    int n = 0;
    for (const char *p = list;; p++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len > 63 || n == cap) return -1;
        memcpy(items[n], p, len);
        items[n++][len] = '\0';
        if (!e) return n;
        p = e;
    }
}

us_status us_eval_tasks_parse(const char *list, const us_eval_task **out, int cap, int *n, us_error *err)
{
    *n = 0;
    char items[64][64], known[512] = "";
    for (int i = 0; i < us_eval_task_count(); i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", g_tasks[i].name);
    int k = list ? split(list, items, 64) : -1;
    if (k < 0)
        return us_error_set(err, US_ERR_INVALID, "tasks '%s': a comma-separated list of: %s", list ? list : "", known);
    for (int i = 0; i < k; i++) {
        const us_eval_task *t = us_eval_task_find(items[i]);
        if (!t) return us_error_set(err, US_ERR_INVALID, "unknown task '%s' (known: %s)", items[i], known);
        for (int j = 0; j < *n; j++)
            if (out[j] == t) return us_error_set(err, US_ERR_INVALID, "task '%s' is listed twice", items[i]);
        if (*n == cap) return us_error_set(err, US_ERR_INVALID, "more than %d tasks", cap);
        out[(*n)++] = t;
    }
    return US_OK;
}

us_status us_eval_lengths_parse(const char *list, int64_t min, int64_t max, int64_t *out, int cap, int *n,
                                us_error *err)
{
    *n = 0;
    char items[64][64];
    int k = list ? split(list, items, 64) : -1;
    if (k < 0)
        return us_error_set(err, US_ERR_INVALID, "lengths '%s': expected a list such as 4k,16k,32k", list ? list : "");
    for (int i = 0; i < k; i++) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(items[i], &end, 10);
        if (end != items[i] && (*end == 'k' || *end == 'K') && v < (1LL << 40)) v *= 1024, end++;
        if (end == items[i] || *end || errno || v < min || v > max)
            return us_error_set(err, US_ERR_INVALID, "length '%s': expected tokens as N or Nk (x1024) in [%lld, %lld]",
                                items[i], (long long)min, (long long)max);
        for (int j = 0; j < *n; j++)
            if (out[j] == v) return us_error_set(err, US_ERR_INVALID, "length '%s' is listed twice", items[i]);
        if (*n == cap) return us_error_set(err, US_ERR_INVALID, "more than %d lengths", cap);
        out[(*n)++] = v;
    }
    return US_OK;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t us_eval_sample_seed(uint64_t seed, const char *task, int64_t length, int index)
{
    uint64_t hsh = 1469598103934665603ull; /* FNV-1a of the task name */
    for (const char *c = task; *c; c++)
        hsh = (hsh ^ (unsigned char)*c) * 1099511628211ull;
    return mix64(mix64(mix64(seed) ^ hsh) ^ (uint64_t)length) ^ mix64((uint64_t)index + 0x51ED);
}

double us_eval_depth(int i, int n)
{
    return n > 1 ? (double)i / (double)(n - 1) : 0.5;
}
