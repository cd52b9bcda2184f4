/* cmd_summarize.c: `unisparse summarize`: one summary file per document, for a batch of documents.
 *
 * Inputs are files, or directories meaning their regular files (not hidden, sorted by name). Each
 * document becomes OUT/<name>.summary.md, written atomically (a temporary file renamed into place),
 * so an existing output is always complete: it is skipped (resume after an interruption) unless
 * --force. A bad document (missing, empty, binary, not UTF-8, too large) is reported and the batch
 * goes on. The report lists each document's status, tokens and time (stderr, and one JSON object on
 * stdout with --json; OUT/summarize-report.json always). Exit status: 0 when every document has its
 * summary, 1 when any failed, 2 bad usage. */
#include "commands.h"
#include "document.h"
#include "options.h"
#include "progress.h"
#include "stats.h"
#include "summarizer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INPUTS 100000
#define MAX_DOC_BYTES ((size_t)256 << 20)

typedef struct {
    char *input, *output;
    const char *status; /* "ok", "skipped", "failed" */
    char error[512];
    us_summary_stats st;
    double seconds;
} doc_job;

typedef struct {
    doc_job *v;
    size_t n, cap;
} job_list;

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int push_job(job_list *l, const char *path)
{
    if (l->n == MAX_INPUTS) return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        doc_job *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v, l->cap = cap;
    }
    doc_job *j = &l->v[l->n];
    memset(j, 0, sizeof *j);
    if (!(j->input = strdup(path))) return -1;
    l->n++;
    return 0;
}

/* A directory argument: its regular, non-hidden files in name order (not recursive). A missing or
 * unreadable path becomes a job that fails with the reason, so the batch reports it. */
static int expand_input(job_list *l, const char *arg)
{
    struct stat sb;
    if (stat(arg, &sb) != 0 || !S_ISDIR(sb.st_mode)) return push_job(l, arg);
    DIR *d = opendir(arg);
    if (!d) return push_job(l, arg);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s%s%s", arg, arg[strlen(arg) - 1] == '/' ? "" : "/", e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *nn);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(path))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!rc) rc = push_job(l, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

typedef struct {
    us_progress *bar;
    int doc, docs;
    int calls;
} batch_ui;

static void ui_prefill(void *user, int64_t done, int64_t total)
{
    batch_ui *u = user;
    char what[96];
    snprintf(what, sizeof what, "call %d: prefill %lld/%lld tokens", u->calls + 1, (long long)done, (long long)total);
    us_progress_set(u->bar, u->doc - 1, u->docs, what);
    if (done == total) u->calls++;
}

static cJSON *report_json(const job_list *l, const char *model, const char *method, int ok, int skipped, int failed)
{
    cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "attention", method);
    for (size_t i = 0; i < l->n; i++) {
        const doc_job *j = &l->v[i];
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "input", j->input);
        if (j->output) cJSON_AddStringToObject(d, "output", j->output);
        cJSON_AddStringToObject(d, "status", j->status);
        if (j->error[0]) cJSON_AddStringToObject(d, "error", j->error);
        if (!strcmp(j->status, "ok")) {
            cJSON_AddNumberToObject(d, "tokens", (double)j->st.doc_tokens);
            cJSON_AddNumberToObject(d, "chunks", j->st.chunks);
            cJSON_AddNumberToObject(d, "calls", j->st.calls);
            cJSON_AddNumberToObject(d, "summary_tokens", j->st.summary_tokens);
            cJSON_AddNumberToObject(d, "seconds", j->seconds);
            cJSON_AddNumberToObject(d, "prefill_ms", j->st.prefill_ms);
            cJSON_AddNumberToObject(d, "attention_ms", j->st.attn.attn_ms);
            cJSON_AddNumberToObject(d, "attention_density",
                                    j->st.attn.visible_pairs > 0 ? j->st.attn.kept_pairs / j->st.attn.visible_pairs
                                                                 : 1.0);
        }
        cJSON_AddItemToArray(a, d);
    }
    cJSON_AddItemToObject(o, "documents", a);
    cJSON_AddNumberToObject(o, "ok", ok);
    cJSON_AddNumberToObject(o, "skipped", skipped);
    cJSON_AddNumberToObject(o, "failed", failed);
    return o;
}

int cmd_summarize(int argc, char **argv)
{
    const char *model_path = NULL, *out_dir = NULL, *attention = "unisparse";
    us_summarize_params sp = us_summarize_params_default();
    int64_t seed = 0;
    int threads = 0;
    bool force = false, json = false;
    const us_option opts[] = {
        {"model", US_OPT_STRING, &model_path, "PATH", "Gemma 3 GGUF file (or Hugging Face directory)"},
        {"out", US_OPT_STRING, &out_dir, "DIR", "where the summaries go (created if missing)"},
        {"max-tokens", US_OPT_INT, &sp.gen.max_tokens, "N", "summary length in tokens at most"},
        {"context", US_OPT_INT, &sp.context, "N", "tokens per model call; longer documents are summarized in chunks"},
        {"attention", US_OPT_STRING, &attention, "M",
         "global layers' prefill attention: dense, unisparse, xattention, flexprefill, minference"},
        {"temperature", US_OPT_FLOAT, &sp.gen.temperature, "T", "sampling temperature; 0 = greedy"},
        {"top-k", US_OPT_INT, &sp.gen.top_k, "K", "sample among the K most likely tokens; 0 = all"},
        {"top-p", US_OPT_FLOAT, &sp.gen.top_p, "P", "nucleus sampling mass; 1 = off"},
        {"seed", US_OPT_INT64, &seed, "S", "sampling seed"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"force", US_OPT_FLAG, &force, NULL, "redo documents whose summary already exists"},
        {"json", US_OPT_FLAG, &json, NULL, "print the report as one JSON object on stdout"},
        {0}};
    static char *pos[MAX_INPUTS];
    int npos = 0;
    int rc = us_options_parse(opts, argc, argv, "unisparse summarize --model PATH --out DIR [options] FILE|DIR...",
                              "Summarizes each document (text or Markdown) into DIR/<name>.summary.md with Gemma 3\n"
                              "on the CPU. Documents longer than --context are summarized in chunks and the chunk\n"
                              "summaries summarized again. Existing summaries are skipped (resume); outputs are\n"
                              "written atomically; a bad document is reported and the batch goes on.",
                              pos, MAX_INPUTS, &npos);
    if (rc >= 0) return rc;
    if (!model_path || !out_dir || npos == 0) {
        fprintf(stderr, "unisparse summarize: need --model PATH, --out DIR and at least one FILE or DIR\n");
        return 2;
    }
    if (sp.gen.max_tokens < 1 || sp.context < 4 * sp.gen.max_tokens || sp.gen.temperature < 0.0f ||
        !isfinite(sp.gen.temperature) || sp.gen.top_k < 0 || !(sp.gen.top_p > 0.0f && sp.gen.top_p <= 1.0f) ||
        threads < 0) {
        fprintf(stderr, "unisparse summarize: need --max-tokens >= 1, --context >= 4 x --max-tokens, --temperature "
                        ">= 0, --top-k >= 0, --top-p in (0, 1], --threads >= 0\n");
        return 2;
    }
    sp.gen.seed = (uint64_t)seed;
    const int meth = us_method_parse(attention);
    if (meth < 0 || meth == US_METHOD_ASHAPE) {
        fprintf(stderr, "unisparse summarize: --attention %s: must be dense, unisparse, xattention, flexprefill or "
                        "minference\n",
                attention);
        return 2;
    }
    struct stat sb;
    if (stat(out_dir, &sb) != 0) {
        if (mkdir(out_dir, 0777) != 0) {
            fprintf(stderr, "unisparse summarize: --out %s: cannot create: %s\n", out_dir, strerror(errno));
            return 1;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "unisparse summarize: --out %s: not a directory\n", out_dir);
        return 1;
    }

    job_list jobs = {0};
    int status = 1;
    us_llm *llm = NULL;
    us_gemma3_model *m = NULL;
    us_error err;
    for (int i = 0; i < npos; i++)
        if (expand_input(&jobs, pos[i])) {
            fprintf(stderr, "unisparse summarize: no memory for the inputs (or more than %d)\n", MAX_INPUTS);
            goto done;
        }
    /* outputs, and the documents whose summary already exists */
    int todo = 0;
    for (size_t i = 0; i < jobs.n; i++) {
        doc_job *j = &jobs.v[i];
        const char *b = base_name(j->input);
        size_t need = strlen(out_dir) + strlen(b) + 16;
        if (!(j->output = malloc(need))) {
            fprintf(stderr, "unisparse summarize: no memory\n");
            goto done;
        }
        snprintf(j->output, need, "%s/%s.summary.md", out_dir, b);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(jobs.v[k].output, j->output)) {
                snprintf(j->error, sizeof j->error, "%s: its output %s would overwrite that of %s", j->input,
                         j->output, jobs.v[k].input);
                j->status = "failed";
            }
        if (!j->status && !force && stat(j->output, &sb) == 0) j->status = "skipped";
        if (!j->status) todo++;
    }

    double t_load = us_wall_ms();
    if (todo > 0) {
        us_gemma3_opts mo = us_gemma3_opts_default();
        mo.method = (us_method)meth;
        mo.threads = threads;
        mo.max_ctx = sp.context;
        if (us_llm_load(model_path, &llm, &err)) {
            fprintf(stderr, "unisparse summarize: %s\n", err.msg);
            goto done;
        }
        if (mo.max_ctx > llm->w->cfg.max_position_embeddings) mo.max_ctx = llm->w->cfg.max_position_embeddings;
        if (sp.context > mo.max_ctx) sp.context = (int)mo.max_ctx;
        if (us_gemma3_model_create(llm->w, &mo, &m, &err)) {
            fprintf(stderr, "unisparse summarize: %s\n", err.msg);
            goto done;
        }
    }
    if (!json)
        fprintf(stderr, "unisparse summarize: %zu documents, %d to summarize (model loaded in %.1f s)\n", jobs.n, todo,
                (us_wall_ms() - t_load) / 1e3);
    int ok = 0, skipped = 0, failed = 0, done_docs = 0;
    us_progress bar;
    us_progress_start(&bar, "summarize", todo);
    for (size_t i = 0; i < jobs.n; i++) {
        doc_job *j = &jobs.v[i];
        if (j->status) continue;
        done_docs++;
        const double t0 = us_wall_ms();
        char *text = NULL, *summary = NULL;
        size_t len = 0;
        batch_ui ui = {&bar, done_docs, todo, 0};
        us_gen_hooks hooks = {&ui, ui_prefill, NULL, NULL};
        us_status s = us_document_read(j->input, MAX_DOC_BYTES, &text, &len, &err);
        if (!s) s = us_summarize(m, llm, text, len, &sp, &hooks, &summary, &j->st, &err);
        us_progress_clear(&bar);
        if (!s) {
            const size_t sl = strlen(summary);
            if (sl == 0 || summary[sl - 1] != '\n') {
                char *t = realloc(summary, sl + 2);
                if (t) summary = t, summary[sl] = '\n', summary[sl + 1] = '\0';
            }
            s = us_atomic_write(j->output, summary, strlen(summary), &err);
        }
        j->seconds = (us_wall_ms() - t0) / 1e3;
        if (s) {
            j->status = "failed";
            snprintf(j->error, sizeof j->error, "%s", err.msg);
            if (!json) fprintf(stderr, "unisparse summarize: FAILED %s\n", err.msg);
        } else {
            j->status = "ok";
            if (!json)
                fprintf(stderr, "unisparse summarize: %s -> %s (%lld tokens, %d chunk%s, %.1f s)\n", j->input,
                        j->output, (long long)j->st.doc_tokens, j->st.chunks, j->st.chunks == 1 ? "" : "s",
                        j->seconds);
        }
        free(text), free(summary);
        us_progress_set(&bar, done_docs, todo, "");
    }
    us_progress_end(&bar);
    for (size_t i = 0; i < jobs.n; i++) {
        const char *st = jobs.v[i].status;
        ok += !strcmp(st, "ok"), skipped += !strcmp(st, "skipped"), failed += !strcmp(st, "failed");
    }
    cJSON *rep = report_json(&jobs, model_path, us_method_name((us_method)meth), ok, skipped, failed);
    char *js = cJSON_PrintUnformatted(rep), rp[4096];
    snprintf(rp, sizeof rp, "%s/summarize-report.json", out_dir);
    if (!js || us_atomic_write(rp, js, strlen(js), &err))
        fprintf(stderr, "unisparse summarize: report: %s\n", js ? err.msg : "no memory");
    if (json) {
        printf("%s\n", js ? js : "{}");
    } else {
        fprintf(stderr, "\n%-8s %8s %6s %8s  %s\n", "status", "tokens", "chunks", "seconds", "document");
        for (size_t i = 0; i < jobs.n; i++) {
            const doc_job *j = &jobs.v[i];
            fprintf(stderr, "%-8s %8lld %6d %8.1f  %s\n", j->status, (long long)j->st.doc_tokens, j->st.chunks,
                    j->seconds, j->error[0] ? j->error : j->input);
        }
        fprintf(stderr, "%d summarized, %d skipped (already done), %d failed\n", ok, skipped, failed);
    }
    free(js);
    cJSON_Delete(rep);
    status = failed ? 1 : 0;
done:
    for (size_t i = 0; i < jobs.n; i++) free(jobs.v[i].input), free(jobs.v[i].output);
    free(jobs.v);
    us_gemma3_model_free(&m);
    us_llm_free(&llm);
    return status;
}
