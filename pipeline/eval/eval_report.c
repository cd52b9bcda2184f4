/* eval_report.c: see eval_report.h. */
#include "eval_report.h"

#include "eval_strbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void us_eval_record_free(us_eval_record *r)
{
    if (!r) return;
    free(r->answer);
    us_eval_answer_free(&r->a);
    memset(r, 0, sizeof *r);
}

/* ---- aggregation ---------------------------------------------------------------------------- */

typedef struct {
    double acc, agr, exact, kl, dens, prefill, attn;
    int n;
} sums;

static void add(sums *s, const us_eval_record *r)
{
    s->acc += r->score, s->agr += r->a.agreement, s->exact += r->a.exact ? 1.0 : 0.0, s->kl += r->a.kl;
    s->dens += r->a.density, s->prefill += r->a.prefill_ms * 1e-3, s->attn += r->a.attn_ms * 1e-3;
    s->n++;
}

/* Distinct values in first-appearance order. */
static int distinct_tasks(const us_eval_record *rec, int n, const char **out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < k && strcmp(out[j], rec[i].task))
            j++;
        if (j == k) out[k++] = rec[i].task;
    }
    return k;
}

static int distinct_lengths(const us_eval_record *rec, int n, int64_t *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < k && out[j] != rec[i].length)
            j++;
        if (j == k) out[k++] = rec[i].length;
    }
    return k;
}

static int distinct_methods(const us_eval_record *rec, int n, us_method *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < k && out[j] != rec[i].method)
            j++;
        if (j == k) out[k++] = rec[i].method;
    }
    return k;
}

us_status us_eval_aggregate(const us_eval_record *rec, int n, us_eval_row **rows, int *n_rows, us_error *err)
{
    *rows = NULL, *n_rows = 0;
    const char **tasks = malloc((size_t)(n + 1) * sizeof *tasks);
    int64_t *lengths = malloc((size_t)(n + 1) * sizeof *lengths);
    us_method *methods = malloc((size_t)(n + 1) * sizeof *methods);
    if (!tasks || !lengths || !methods) {
        free(tasks), free(lengths), free(methods);
        return us_error_set(err, US_ERR_NOMEM, "no memory");
    }
    const int nt = distinct_tasks(rec, n, tasks), nl = distinct_lengths(rec, n, lengths),
              nm = distinct_methods(rec, n, methods);
    const int groups = nt > 1 ? nt + 1 : nt; /* the "all" row last */
    us_eval_row *out = calloc((size_t)(nl * groups * nm + 1), sizeof *out);
    if (!out) {
        free(tasks), free(lengths), free(methods);
        return us_error_set(err, US_ERR_NOMEM, "no memory");
    }
    int k = 0;
    for (int li = 0; li < nl; li++)
        for (int ti = 0; ti < groups; ti++) {
            const char *task = ti < nt ? tasks[ti] : "all";
            const int first = k;
            double dense_acc = NAN;
            for (int mi = 0; mi < nm; mi++) {
                sums s = {0};
                for (int i = 0; i < n; i++)
                    if (rec[i].length == lengths[li] && rec[i].method == methods[mi] &&
                        (ti == nt || !strcmp(rec[i].task, task)))
                        add(&s, &rec[i]);
                if (s.n == 0) continue;
                const double d = (double)s.n;
                out[k] = (us_eval_row){task,      lengths[li], methods[mi], s.n,        s.acc / d,     NAN,
                                       s.agr / d, s.exact / d, s.kl / d,    s.dens / d, s.prefill / d, s.attn / d};
                if (methods[mi] == US_METHOD_DENSE) dense_acc = out[k].accuracy;
                k++;
            }
            for (int r = first; r < k; r++)
                out[r].relative = out[r].method == US_METHOD_DENSE ? 1.0
                                  : dense_acc > 0.0                ? out[r].accuracy / dense_acc
                                                                   : NAN;
        }
    free(tasks), free(lengths), free(methods);
    *rows = out;
    *n_rows = k;
    return US_OK;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *rows_json(const us_eval_row *rows, int n_rows)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n_rows; i++) {
        const us_eval_row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "task", r->task);
        cJSON_AddNumberToObject(o, "length", (double)r->length);
        cJSON_AddStringToObject(o, "method", us_method_name(r->method));
        cJSON_AddNumberToObject(o, "samples", r->n);
        add_num(o, "accuracy", r->accuracy);
        add_num(o, "relative_accuracy", r->relative);
        add_num(o, "token_agreement", r->agreement);
        add_num(o, "exact_match", r->exact);
        add_num(o, "kl", r->kl);
        add_num(o, "density", r->density);
        add_num(o, "prefill_s", r->prefill_s);
        add_num(o, "attention_s", r->attn_s);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *run_json(const us_eval_record *r)
{
    cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray();
    if (!o || !ids) {
        cJSON_Delete(o), cJSON_Delete(ids);
        return NULL;
    }
    cJSON_AddStringToObject(o, "method", us_method_name(r->method));
    cJSON_AddStringToObject(o, "answer", r->answer ? r->answer : "");
    for (int i = 0; i < r->a.n; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(r->a.ids[i]));
    cJSON_AddItemToObject(o, "answer_ids", ids);
    cJSON_AddStringToObject(o, "stop", r->a.stop ? r->a.stop : "");
    add_num(o, "score", r->score);
    add_num(o, "token_agreement", r->a.agreement);
    cJSON_AddBoolToObject(o, "exact_match", r->a.exact);
    add_num(o, "kl", r->a.kl);
    cJSON_AddNumberToObject(o, "kl_positions", r->a.kl_positions);
    cJSON_AddNumberToObject(o, "teacher_forced", r->a.forced);
    add_num(o, "density", r->a.density);
    add_num(o, "prefill_s", r->a.prefill_ms * 1e-3);
    add_num(o, "attention_s", r->a.attn_ms * 1e-3);
    add_num(o, "selection_s", r->a.select_ms * 1e-3);
    add_num(o, "decode_s", r->a.decode_ms * 1e-3);
    add_num(o, "wall_s", r->wall_ms * 1e-3);
    return o;
}

static const char *g_definitions[][2] = {
    {"length", "text tasks: the requested prompt + answer length in tokens (--lengths); video tasks: the realised "
               "prompt tokens (frames, timestamps, question and answer prefix)"},
    {"accuracy", "RULER string_match_all: the fraction of expected values found in the answer (ASCII case "
                 "ignored), mean over samples"},
    {"relative_accuracy", "accuracy / dense accuracy on the same task and length (1 for dense; null where dense "
                          "scored 0)"},
    {"token_agreement", "common prefix of the greedy answer token sequences (each ended by its stop token) over "
                        "the dense sequence's length, mean over samples"},
    {"exact_match", "share of samples whose answer tokens and stop equal dense's"},
    {"kl", "KL(dense || method) in nats of the next-token distributions at every position of the dense answer, "
           "teacher-forced on it, mean over positions, then samples"},
    {"density", "kept / causally visible (query, key) pairs of the global layers' prefill attention"},
    {"prefill_s", "wall time of the prompt's prefill, all layers"},
    {"attention_s", "of which the global layers' attention (selection included)"},
};

static cJSON *meta_json(const us_eval_meta *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", m->model ? m->model : "");
    cJSON_AddStringToObject(o, "haystack", m->haystack ? m->haystack : "");
    cJSON_AddNumberToObject(o, "seed", (double)m->seed);
    cJSON_AddNumberToObject(o, "samples", m->samples);
    cJSON_AddStringToObject(o, "tasks", m->tasks ? m->tasks : "");
    cJSON_AddStringToObject(o, "methods", m->methods ? m->methods : "");
    cJSON_AddStringToObject(o, "lengths", m->lengths ? m->lengths : "");
    if (m->video) {
        cJSON_AddStringToObject(o, "video", m->video);
        cJSON_AddNumberToObject(o, "frames", m->frames);
    }
    cJSON_AddNumberToObject(o, "prefill_chunk", m->prefill_chunk);
    cJSON_AddNumberToObject(o, "threads", m->threads);
    cJSON_AddNumberToObject(o, "unisparse_tau", m->unisparse_tau);
    cJSON_AddNumberToObject(o, "block", m->block);
    cJSON_AddNumberToObject(o, "started", (double)m->started);
    cJSON_AddBoolToObject(o, "complete", m->complete);
    cJSON *d = cJSON_AddObjectToObject(o, "definitions");
    for (size_t i = 0; d && i < sizeof g_definitions / sizeof *g_definitions; i++)
        cJSON_AddStringToObject(d, g_definitions[i][0], g_definitions[i][1]);
    return o;
}

char *us_eval_results_json(const us_eval_meta *meta, const us_eval_record *rec, int n, const us_eval_row *rows,
                           int n_rows)
{
    cJSON *root = meta_json(meta), *samples = cJSON_CreateArray();
    if (!root || !samples) {
        cJSON_Delete(root), cJSON_Delete(samples);
        return NULL;
    }
    cJSON_AddItemToObject(root, "samples", samples);
    /* records come sample by sample, each sample's methods together */
    for (int i = 0; i < n;) {
        const us_eval_record *r = &rec[i];
        cJSON *s = cJSON_CreateObject(), *exp = cJSON_CreateArray(), *runs = cJSON_CreateArray();
        if (!s || !exp || !runs) {
            cJSON_Delete(s), cJSON_Delete(exp), cJSON_Delete(runs);
            break;
        }
        cJSON_AddStringToObject(s, "task", r->task);
        cJSON_AddNumberToObject(s, "length", (double)r->length);
        cJSON_AddNumberToObject(s, "index", r->index);
        cJSON_AddNumberToObject(s, "depth", r->depth);
        cJSON_AddNumberToObject(s, "prompt_tokens", (double)r->prompt_tokens);
        for (int e = 0; e < r->n_expected; e++)
            cJSON_AddItemToArray(exp, cJSON_CreateString(r->expected[e]));
        cJSON_AddItemToObject(s, "expected", exp);
        for (; i < n && rec[i].length == r->length && rec[i].index == r->index && !strcmp(rec[i].task, r->task); i++)
            cJSON_AddItemToArray(runs, run_json(&rec[i]));
        cJSON_AddItemToObject(s, "runs", runs);
        cJSON_AddItemToArray(samples, s);
    }
    cJSON_AddItemToObject(root, "aggregate", rows_json(rows, n_rows));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

char *us_eval_aggregate_json(const us_eval_row *rows, int n_rows)
{
    cJSON *a = rows_json(rows, n_rows);
    char *text = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return text;
}

/* ---- Markdown ------------------------------------------------------------------------------- */

static void fmt(us_strbuf *b, const char *f, double v)
{
    if (isfinite(v))
        us_strbuf_printf(b, f, v);
    else
        us_strbuf_puts(b, "n/a");
}

char *us_eval_results_md(const us_eval_meta *m, const us_eval_row *rows, int n_rows)
{
    us_strbuf b = {0};
    char when[64] = "";
    const time_t t = (time_t)m->started;
    struct tm tmv;
    if (gmtime_r(&t, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tmv);
    char chunk[48] = "the whole prompt";
    if (m->prefill_chunk > 0) snprintf(chunk, sizeof chunk, "%d tokens", m->prefill_chunk);
    us_strbuf_printf(&b, "# unisparse eval%s\n\n", m->complete ? "" : " (in progress)");
    us_strbuf_printf(&b,
                     "Model `%s`, haystack `%s`, %d sample(s) per task and length, seed %llu, prefill chunk: %s, "
                     "started %s.\nTasks: %s. Methods: %s (UniSparse tau %.3g; the baselines at their defaults; "
                     "selection block %d). Lengths: %s.\n\n",
                     m->model ? m->model : "", m->haystack ? m->haystack : "", m->samples, (unsigned long long)m->seed,
                     chunk, when, m->tasks ? m->tasks : "", m->methods ? m->methods : "", (double)m->unisparse_tau,
                     m->block, m->lengths ? m->lengths : "");
    if (m->video)
        us_strbuf_printf(&b,
                         "Video tasks: %d frames of `%s`, one replaced by the needle; their length is the realised "
                         "prompt tokens (--lengths do not apply).\n\n",
                         m->frames, m->video);
    us_strbuf_puts(&b, "| task | length | method | accuracy | rel. to dense | token agreement | exact match | KL "
                       "| density | prefill s |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_rows; i++) {
        const us_eval_row *r = &rows[i];
        us_strbuf_printf(&b, "| %s | %lld | %s | ", r->task, (long long)r->length, us_method_name(r->method));
        fmt(&b, "%.3f", r->accuracy);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.3f", r->relative);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.3f", r->agreement);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.2f", r->exact);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.2e", r->kl);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.3f", r->density);
        us_strbuf_puts(&b, " | ");
        fmt(&b, "%.1f", r->prefill_s);
        us_strbuf_puts(&b, " |\n");
    }
    us_strbuf_puts(&b, "\nDefinitions:\n\n");
    for (size_t i = 0; i < sizeof g_definitions / sizeof *g_definitions; i++)
        us_strbuf_printf(&b, "- %s: %s.\n", g_definitions[i][0], g_definitions[i][1]);
    return us_strbuf_take(&b);
}
