/* eval_report.h: the records of an evaluation, their aggregate table, and the results.json and
 * results.md texts of `unisparse eval`.
 *
 *   us_eval_record rec[...];   // one per (sample, method), appended as the runs finish
 *   us_eval_row *rows;  int nr;
 *   us_eval_aggregate(rec, n, &rows, &nr, &err);
 *   char *json = us_eval_results_json(&meta, rec, n, rows, nr);   // NULL: no memory
 *   char *md = us_eval_results_md(&meta, rows, nr);
 *   free(json), free(md), free(rows);
 *
 * The aggregate has one row per (length, task, method) in the order the records first show them,
 * and, when there are several tasks, an "all" row per (length, method) over every sample of that
 * length. Means are over samples. The relative accuracy is accuracy / dense's accuracy on the same
 * rows: 1 for dense by definition, NaN (JSON null, "n/a") where dense scored 0 or did not run. */
#ifndef UNISPARSE_EVAL_REPORT_H
#define UNISPARSE_EVAL_REPORT_H

#include "eval_runner.h"

typedef struct {
    const char *task; /* the task's name (static) */
    int64_t length;   /* the requested length in tokens */
    int index;        /* sample index within (task, length) */
    us_method method;
    double depth;
    int64_t prompt_tokens;
    const char *const *expected; /* borrowed from the sample */
    int n_expected;
    char *answer;     /* decoded answer text (owned) */
    us_eval_answer a; /* owned */
    double score;     /* us_eval_score_all */
    double wall_ms;   /* the whole run: model creation, prefill, answer, teacher forcing */
} us_eval_record;

void us_eval_record_free(us_eval_record *r);

typedef struct {
    const char *task; /* a task name or "all" */
    int64_t length;
    us_method method;
    int n; /* samples */
    double accuracy, relative, agreement, exact, kl, density;
    double prefill_s, attn_s; /* mean per sample */
} us_eval_row;

us_status us_eval_aggregate(const us_eval_record *rec, int n, us_eval_row **rows, int *n_rows, us_error *err);

/* What the run was, for the reports' headers. */
typedef struct {
    const char *model, *haystack;
    uint64_t seed;
    int samples, prefill_chunk, threads;
    const char *tasks, *methods, *lengths; /* as given */
    int64_t started;                       /* Unix time */
    bool complete;                         /* false while the run goes on */
    float unisparse_tau;                   /* UniSparse's kept mass in this run */
    int block;                             /* the sparse methods' selection block in this run */
    const char *video;                     /* the video tasks' haystack video; NULL: no video task */
    int frames;                            /* frames each video sample shows */
} us_eval_meta;

/* Every record (grouped by sample, with each method's run) and the aggregate, as one JSON object;
 * NULL when out of memory. */
char *us_eval_results_json(const us_eval_meta *meta, const us_eval_record *rec, int n, const us_eval_row *rows,
                           int n_rows);
/* The aggregate alone as a JSON array. */
char *us_eval_aggregate_json(const us_eval_row *rows, int n_rows);
/* A Markdown page: what was run, the metric definitions and the aggregate table. */
char *us_eval_results_md(const us_eval_meta *meta, const us_eval_row *rows, int n_rows);

#endif
