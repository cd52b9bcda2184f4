/* cmd_eval.c: `unisparse eval`: accuracy and fidelity of the sparse prefill methods against dense
 * attention on RULER-style long-context tasks, with Gemma 3 on the CPU.
 *
 *   unisparse eval --model models/gemma-3-270m-q4_k_m.gguf --tasks niah_single,vt \
 *       --methods dense,unisparse --lengths 4k,16k --samples 5 --out runs/eval [--haystack data/haystack.txt]
 *   unisparse eval --model models/gemma-3-4b-it --tasks video_needle --video clip.mp4 --frames 16 \
 *       --methods dense,unisparse --samples 5 --out runs/eval-video
 *
 * Video tasks (a checkpoint with a vision tower; eval_video.h) sample --frames frames of --video once
 * and encode them once; each sample then encodes only its needle frame, and its rows serve every
 * method. --lengths do not apply to them: a video sample's length is its realised prompt tokens.
 * Every prompt is built first (so that a bad length or haystack fails in seconds, not hours), then
 * each sample runs through dense (the reference, always run first) and every other method. The
 * weights are loaded once; the model (KV cache and scratch) is made for each run, sized for that
 * prompt, because one resident model per method would hold several caches of the longest prompt
 * (1.2 GB each for the 270M model at 32K) while a fresh one costs only its allocation. After each sample
 * DIR/results.json, results.md and plot.png are rewritten atomically, so an interrupted run keeps
 * what it finished ("complete": false). --json prints the aggregate table at the end. Exit status:
 * 0 success, 1 bad input file or failure, 2 bad usage. */
#include "commands.h"
#include "document.h"
#include "eval_metrics.h"
#include "eval_plot.h"
#include "eval_report.h"
#include "eval_runner.h"
#include "eval_tasks.h"
#include "eval_video.h"
#include "llm.h"
#include "options.h"
#include "progress.h"
#include "stats.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_LIST 16

/* ---- prompts -------------------------------------------------------------------------------- */

/* The prompt as the model sees it: the chat template around the question, then the answer prefix
 * as the start of the model's turn. */
static us_status encode_prompt(const us_llm *llm, const char *question, const char *prefix, int32_t **ids, int64_t *n,
                               us_error *err)
{
    int32_t *q = NULL, *a = NULL;
    int64_t nq = 0, na = 0;
    us_status s = us_llm_encode(llm, question, US_PROMPT_CHAT, &q, &nq, err);
    if (!s) s = us_llm_encode(llm, prefix, US_PROMPT_RAW, &a, &na, err);
    int32_t *all = s ? NULL : realloc(q, (size_t)(nq + na) * sizeof *q);
    if (!s && !all) s = us_error_set(err, US_ERR_NOMEM, "no memory for a %lld-token prompt", (long long)(nq + na));
    if (s) {
        free(q), free(a);
        return s;
    }
    memcpy(all + nq, a, (size_t)na * sizeof *a);
    free(a);
    *ids = all;
    *n = nq + na;
    return US_OK;
}

static us_status count_prompt(void *user, const char *question, const char *prefix, int64_t *n, us_error *err)
{
    int32_t *ids = NULL;
    us_status s = encode_prompt(user, question, prefix, &ids, n, err);
    free(ids);
    return s;
}

typedef struct {
    const us_eval_task *task;
    int64_t length;
    int index, max_tokens;
    us_eval_sample s;
    int32_t *ids;
    int64_t n;
    float *needle; /* video: the needle frame's rows (eval_video.h) */
} prepared;

/* ---- outputs -------------------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        const char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
        *p = c;
        if (c == '\0') break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Rewrites results.json, results.md and plot.png in dir; returns 0 or 1 after a message. */
static int write_outputs(const char *dir, const us_eval_meta *meta, const us_eval_record *rec, int n_rec,
                         us_eval_row **rows, int *n_rows)
{
    us_error err;
    char path[4200];
    free(*rows);
    *rows = NULL;
    if (us_eval_aggregate(rec, n_rec, rows, n_rows, &err)) {
        fprintf(stderr, "unisparse eval: %s\n", err.msg);
        return 1;
    }
    char *json = us_eval_results_json(meta, rec, n_rec, *rows, *n_rows);
    char *md = us_eval_results_md(meta, *rows, *n_rows);
    int status = 0;
    if (!json || !md) {
        fprintf(stderr, "unisparse eval: no memory for the reports\n");
        status = 1;
    }
    snprintf(path, sizeof path, "%s/results.json", dir);
    if (!status && us_atomic_write(path, json, strlen(json), &err)) status = 1;
    snprintf(path, sizeof path, "%s/results.md", dir);
    if (!status && us_atomic_write(path, md, strlen(md), &err)) status = 1;
    unsigned char *png = NULL;
    size_t png_len = 0;
    if (!status) {
        snprintf(path, sizeof path, "%s/plot.png", dir);
        if (us_eval_plot_png(*rows, *n_rows, &png, &png_len, &err) == US_OK) {
            if (us_atomic_write(path, png, png_len, &err)) status = 1;
        } else if (meta->complete) {
            fprintf(stderr, "unisparse eval: no plot.png: %s\n", err.msg); /* the tables stand alone */
        }
    }
    if (status && json && md) fprintf(stderr, "unisparse eval: %s\n", err.msg);
    free(json), free(md), free(png);
    return status;
}

/* ---- the run -------------------------------------------------------------------------------- */

typedef struct {
    us_progress *bar;
    int base; /* progress units done before this run */
    int64_t chunk;
    char what[96];
} run_ui;

static void ui_prefill(void *user, int64_t done, int64_t total)
{
    run_ui *u = user;
    const int64_t calls = (done + u->chunk - 1) / u->chunk;
    us_progress_set(u->bar, u->base + (int)calls, u->bar->total, u->what);
    (void)total;
}

static int parse_methods(const char *list, us_method *out, int *n)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    out[(*n)++] = US_METHOD_DENSE; /* the reference, first */
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const int m = us_method_parse(t);
        if (m < 0 || m == US_METHOD_ASHAPE) {
            fprintf(stderr,
                    "unisparse eval: --methods: unknown method '%s' (known: dense, unisparse, xattention, "
                    "flexprefill, minference)\n",
                    t);
            return 2;
        }
        bool dup = false;
        for (int i = 1; i < *n; i++)
            dup |= out[i] == (us_method)m;
        if (m == US_METHOD_DENSE) continue; /* already first */
        if (dup || *n == MAX_LIST) {
            fprintf(stderr, "unisparse eval: --methods: '%s' is listed twice\n", t);
            return 2;
        }
        out[(*n)++] = (us_method)m;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *out_dir = NULL, *haystack_spec = "noise", *video_path = NULL;
    const char *tasks_arg = "niah_single,niah_multikey,niah_multivalue,vt";
    const char *methods_arg = "dense,unisparse,xattention,flexprefill,minference", *lengths_arg = "4k";
    int samples = 3, max_tokens = 0, prefill_chunk = 0, threads = 0, frames = 16;
    const us_unisparse_params runtime = us_gemma3_opts_default().params; /* what the other tools use */
    int block = runtime.block;
    float tau = runtime.tau;
    int64_t seed = 42;
    bool json = false;
    const us_option opts[] = {
        {"model", US_OPT_STRING, &model_path, "PATH", "Gemma 3 GGUF file (or Hugging Face directory)"},
        {"tasks", US_OPT_STRING, &tasks_arg, "LIST",
         "niah_single, niah_multikey, niah_multivalue, vt (text); video_needle (--video, a vision checkpoint)"},
        {"methods", US_OPT_STRING, &methods_arg, "LIST",
         "dense (the reference, always run), unisparse, xattention, flexprefill, minference"},
        {"lengths", US_OPT_STRING, &lengths_arg, "LIST",
         "text tasks' prompt + answer lengths in tokens: 512, 4k, 16k, 32k, ..."},
        {"tau", US_OPT_FLOAT, &tau, "T", "UniSparse's kept attention mass (the runtime's default; the baselines keep theirs)"},
        {"block", US_OPT_INT, &block, "S", "the sparse methods' selection block, 64 or 128"},
        {"samples", US_OPT_INT, &samples, "N", "samples per task and length (needle depths spread over [0, 1])"},
        {"seed", US_OPT_INT64, &seed, "S", "seed of every sample's keys, values and haystack offset"},
        {"out", US_OPT_STRING, &out_dir, "DIR", "where results.json, results.md and plot.png go (created)"},
        {"haystack", US_OPT_STRING, &haystack_spec, "FILE|noise",
         "filler text: a UTF-8 file (scripts/fetch-haystack.sh makes data/haystack.txt) or RULER's noise"},
        {"video", US_OPT_STRING, &video_path, "FILE",
         "video tasks' haystack: any video FFmpeg reads; a frame showing a number replaces one sampled frame"},
        {"frames", US_OPT_INT, &frames, "N", "video tasks: frames sampled uniformly, the needle's included"},
        {"max-tokens", US_OPT_INT, &max_tokens, "N", "answer budget; 0 = each task's own (12 to 48)"},
        {"prefill-chunk", US_OPT_INT, &prefill_chunk, "N", "prompt tokens per prefill call; 0 = the whole prompt"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"json", US_OPT_FLAG, &json, NULL, "print the aggregate table as JSON at the end"},
        {0}};
    int rc = us_options_parse(opts, argc, argv,
                              "unisparse eval --model PATH --out DIR [--tasks LIST] [--methods LIST] [--lengths LIST] "
                              "[options]",
                              "Scores the sparse prefill methods against dense attention on RULER-style tasks:\n"
                              "accuracy, accuracy relative to dense, greedy token agreement, KL(dense || method)\n"
                              "at the answer positions, realised density and prefill time. video_needle does the\n"
                              "same on --frames frames of --video, one replaced by a frame showing a number, for\n"
                              "checkpoints with a vision tower; its length is the realised prompt tokens.",
                              NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!model_path || !out_dir) {
        fprintf(stderr, "unisparse eval: --model PATH and --out DIR are required (see --help)\n");
        return 2;
    }
    if (samples < 1 || samples > 10000 || max_tokens < 0 || max_tokens > 4096 || prefill_chunk < 0 || threads < 0 ||
        !(tau > 0.0f && tau <= 1.0f) || frames < 1 || frames > 1024 || (block != 64 && block != 128)) {
        fprintf(stderr, "unisparse eval: need --samples in [1, 10000], --max-tokens in [0, 4096], "
                        "--prefill-chunk >= 0, --threads >= 0, --tau in (0, 1], --frames in [1, 1024], "
                        "--block 64 or 128\n");
        return 2;
    }
    us_error err;
    const us_eval_task *tasks[MAX_LIST];
    int n_tasks = 0, n_lengths = 0, n_methods = 0;
    if (us_eval_tasks_parse(tasks_arg, tasks, MAX_LIST, &n_tasks, &err)) {
        fprintf(stderr, "unisparse eval: --tasks: %s\n", err.msg);
        return 2;
    }
    int n_text = 0;
    const char *video_task = NULL; /* the first video task, for messages */
    for (int i = 0; i < n_tasks; i++) {
        if (tasks[i]->modality == US_EVAL_TEXT) n_text++;
        if (tasks[i]->modality == US_EVAL_VIDEO && !video_task) video_task = tasks[i]->name;
    }
    if (video_task && !video_path) {
        fprintf(stderr, "unisparse eval: --tasks %s: a video task needs --video FILE (the haystack video)\n",
                video_task);
        return 2;
    }
    int64_t lengths[MAX_LIST];
    if (us_eval_lengths_parse(lengths_arg, 64, (int64_t)1 << 24, lengths, MAX_LIST, &n_lengths, &err)) {
        fprintf(stderr, "unisparse eval: --lengths: %s\n", err.msg);
        return 2;
    }
    us_method methods[MAX_LIST];
    if ((rc = parse_methods(methods_arg, methods, &n_methods))) return rc;
    char methods_used[256] = "";
    for (int i = 0; i < n_methods; i++)
        snprintf(methods_used + strlen(methods_used), sizeof methods_used - strlen(methods_used), "%s%s", i ? "," : "",
                 us_method_name(methods[i]));

    us_llm *llm = NULL;
    us_eval_haystack *hay = NULL;
    prepared *prep = NULL;
    us_eval_record *rec = NULL;
    us_eval_row *rows = NULL;
    int n_prep = 0, n_rec = 0, n_rows = 0, status = 1;
    us_eval_reference ref = {0};
    us_gemma3_model *model = NULL;
    eval_video *video = NULL;

    /* the haystack only when a text task reads it */
    if (us_llm_load(model_path, &llm, &err) || (n_text && us_eval_haystack_load(haystack_spec, &hay, &err))) {
        fprintf(stderr, "unisparse eval: %s\n", err.msg);
        goto done;
    }
    if (video_task && !llm->w->vision) {
        fprintf(stderr,
                "unisparse eval: --tasks %s: %s has no vision tower; video tasks need a Gemma 3 checkpoint with one "
                "(4B, 12B, 27B: a Gemma3ForConditionalGeneration Hugging Face directory)\n",
                video_task, model_path);
        status = 2;
        goto done;
    }
    const int64_t ctx = llm->w->cfg.max_position_embeddings;
    for (int i = 0; n_text && i < n_lengths; i++)
        if (lengths[i] > ctx) {
            fprintf(stderr, "unisparse eval: --lengths: %lld tokens exceed the model's context (%lld) of %s\n",
                    (long long)lengths[i], (long long)ctx, model_path);
            status = 2;
            goto done;
        }
    if (mkdir_p(out_dir) != 0) {
        fprintf(stderr, "unisparse eval: --out %s: %s\n", out_dir, strerror(errno));
        goto done;
    }
    us_progress bar;
    if (video_task) { /* the frames, once for every sample */
        us_progress_start(&bar, "frames", frames);
        us_status s = eval_video_open(llm, video_path, frames, threads, &bar, &video, &err);
        us_progress_end(&bar);
        if (s) {
            fprintf(stderr, "unisparse eval: %s\n", err.msg);
            goto done;
        }
    }

    /* 1. every prompt, before any model runs; a video task once, not per length */
    const int total_samples = (n_lengths * n_text + (n_tasks - n_text)) * samples;
    prep = calloc((size_t)total_samples, sizeof *prep);
    rec = calloc((size_t)total_samples * (size_t)n_methods, sizeof *rec);
    if (!prep || !rec) {
        fprintf(stderr, "unisparse eval: no memory\n");
        goto done;
    }
    us_eval_counter counter = {llm, count_prompt};
    us_progress_start(&bar, "prompts", total_samples);
    int units = 0;
    for (int li = 0; li < n_lengths; li++)
        for (int ti = 0; ti < n_tasks; ti++)
            for (int si = 0; si < samples; si++) {
                const bool is_video = tasks[ti]->modality == US_EVAL_VIDEO;
                if (is_video && li > 0) break;
                prepared *p = &prep[n_prep];
                p->task = tasks[ti], p->length = lengths[li], p->index = si;
                p->max_tokens = max_tokens > 0 ? max_tokens : tasks[ti]->answer_tokens;
                us_status s;
                if (is_video) { /* seeded by the frame count, as lengths seed the text tasks */
                    us_eval_video_params vp = {us_eval_sample_seed((uint64_t)seed, tasks[ti]->name, frames, si),
                                               us_eval_depth(si, samples), frames};
                    s = tasks[ti]->build_video(tasks[ti], &vp, &p->s, &err);
                    if (!s) s = eval_video_prepare(video, &p->s, &p->needle, &p->ids, &p->n, &err);
                    if (!s && p->n + p->max_tokens > ctx)
                        s = us_error_set(&err, US_ERR_INVALID,
                                         "%s: %d frames make a %lld-token prompt; with the answer budget (%d) that "
                                         "exceeds the context (%lld) of %s (use fewer --frames)",
                                         video_path, frames, (long long)p->n, p->max_tokens, (long long)ctx,
                                         model_path);
                    p->length = p->n, p->s.tokens = p->n;
                } else {
                    us_eval_build_params bp = {lengths[li] - p->max_tokens,
                                               us_eval_sample_seed((uint64_t)seed, tasks[ti]->name, lengths[li], si),
                                               us_eval_depth(si, samples)};
                    s = bp.max_prompt_tokens < 1 ? us_error_set(&err, US_ERR_INVALID, "no room for a prompt")
                                                 : tasks[ti]->build_text(tasks[ti], hay, &counter, &bp, &p->s, &err);
                    if (!s) s = encode_prompt(llm, p->s.question, p->s.answer_prefix, &p->ids, &p->n, &err);
                }
                if (s) {
                    us_eval_sample_free(&p->s);
                    free(p->ids), free(p->needle);
                    us_progress_end(&bar);
                    if (is_video)
                        fprintf(stderr, "unisparse eval: %s: %s\n", tasks[ti]->name, err.msg);
                    else
                        fprintf(stderr, "unisparse eval: %s at length %lld: %s\n", tasks[ti]->name,
                                (long long)lengths[li], err.msg);
                    if (s == US_ERR_INVALID) status = 2;
                    goto done;
                }
                n_prep++;
                const int64_t chunk = prefill_chunk > 0 ? prefill_chunk : p->n;
                units += n_methods * (int)((p->n + chunk - 1) / chunk + 1);
                char what[64];
                snprintf(what, sizeof what, "%s %lld #%d", tasks[ti]->name, (long long)p->length, si);
                us_progress_step(&bar, what);
            }
    us_progress_end(&bar);

    /* 2. every sample through every method, dense first */
    us_eval_meta meta = {.model = model_path,
                         .haystack = hay ? us_eval_haystack_name(hay) : "none (no text task)",
                         .seed = (uint64_t)seed,
                         .samples = samples,
                         .prefill_chunk = prefill_chunk,
                         .threads = threads,
                         .unisparse_tau = tau,
                         .block = block,
                         .tasks = tasks_arg,
                         .methods = methods_used,
                         .lengths = n_text ? lengths_arg : "none (video tasks only)",
                         .started = (int64_t)time(NULL),
                         .complete = false,
                         .video = video_task ? video_path : NULL,
                         .frames = frames};
    us_progress_start(&bar, "eval", units);
    int done_units = 0;
    for (int pi = 0; pi < n_prep; pi++) {
        prepared *p = &prep[pi];
        us_eval_run_params rp = {p->max_tokens, prefill_chunk, 0, NULL, ui_prefill};
        const float *img = NULL; /* video: the frames with this sample's needle, for every method */
        int64_t n_img = 0;
        if (p->needle) {
            img = eval_video_rows(video, p->needle, p->s.needle_frame, &n_img);
            rp.image_tokens = eval_video_tokens_per_frame(video);
        }
        for (int mi = 0; mi < n_methods; mi++) {
            run_ui ui = {&bar, done_units, prefill_chunk > 0 ? prefill_chunk : p->n, ""};
            snprintf(ui.what, sizeof ui.what, "%s %lld #%d %s", p->task->name, (long long)p->length, p->index,
                     us_method_name(methods[mi]));
            rp.user = &ui;
            us_gemma3_opts mo = us_gemma3_opts_default();
            mo.method = methods[mi];
            mo.threads = threads;
            mo.params.tau = tau;
            mo.params.block = block;
            us_eval_size_model(&mo, p->n, &rp);
            us_eval_record *r = &rec[n_rec];
            *r = (us_eval_record){.task = p->task->name,
                                  .length = p->length,
                                  .index = p->index,
                                  .method = methods[mi],
                                  .depth = p->s.depth,
                                  .prompt_tokens = p->n,
                                  .expected = (const char *const *)p->s.expected,
                                  .n_expected = p->s.n_expected};
            const double t0 = us_wall_ms();
            us_status s = us_gemma3_model_create(llm->w, &mo, &model, &err);
            if (!s)
                s = us_eval_run(model, llm, p->ids, p->n, img, n_img, &rp, mi == 0 ? NULL : &ref, mi == 0 ? &ref : NULL,
                                &r->a, &err);
            us_gemma3_model_free(&model);
            r->wall_ms = us_wall_ms() - t0;
            if (!s) s = us_llm_decode(llm, r->a.ids, r->a.n, &r->answer, &err);
            if (s) {
                us_progress_end(&bar);
                fprintf(stderr, "unisparse eval: %s, sample %d of length %lld, %s: %s\n", p->task->name, p->index,
                        (long long)p->length, us_method_name(methods[mi]), err.msg);
                us_eval_record_free(r);
                goto done;
            }
            r->score = us_eval_score_all(r->answer, (const char *const *)p->s.expected, p->s.n_expected);
            n_rec++;
            if (!bar.tty) /* a log (nohup, CI) gets a line per run instead of the bar */
                fprintf(stderr,
                        "unisparse eval: [%d/%d] %s: score %.2f, agreement %.2f, KL %.2e, density %.3f, %.1f s\n",
                        n_rec, n_prep * n_methods, ui.what, r->score, r->a.agreement, r->a.kl, r->a.density,
                        r->wall_ms * 1e-3);
            done_units += (int)((p->n + ui.chunk - 1) / ui.chunk + 1);
            us_progress_set(&bar, done_units, units, ui.what);
        }
        us_eval_reference_free(&ref);
        if (write_outputs(out_dir, &meta, rec, n_rec, &rows, &n_rows)) goto done;
    }
    us_progress_end(&bar);
    meta.complete = true;
    if (write_outputs(out_dir, &meta, rec, n_rec, &rows, &n_rows)) goto done;

    if (json) {
        char *a = us_eval_aggregate_json(rows, n_rows);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "out", out_dir);
        cJSON_AddItemToObject(o, "aggregate", a ? cJSON_Parse(a) : cJSON_CreateArray());
        char *text = cJSON_PrintUnformatted(o);
        printf("%s\n", text ? text : "{}");
        free(text), free(a);
        cJSON_Delete(o);
    } else {
        printf("%-16s %7s %-12s %8s %8s %9s %6s %9s %8s %9s\n", "task", "length", "method", "accuracy", "rel",
               "agreement", "exact", "KL", "density", "prefill_s");
        for (int i = 0; i < n_rows; i++) {
            const us_eval_row *r = &rows[i];
            char rel[16] = "n/a"; /* dense scored 0 */
            if (!isnan(r->relative)) snprintf(rel, sizeof rel, "%.3f", r->relative);
            printf("%-16s %7lld %-12s %8.3f %8s %9.3f %6.2f %9.2e %8.3f %9.1f\n", r->task, (long long)r->length,
                   us_method_name(r->method), r->accuracy, rel, r->agreement, r->exact, r->kl, r->density,
                   r->prefill_s);
        }
        fprintf(stderr, "unisparse eval: wrote %s/results.json, results.md and plot.png\n", out_dir);
    }
    status = 0;
done:
    us_eval_reference_free(&ref);
    us_gemma3_model_free(&model);
    for (int i = 0; i < n_rec; i++)
        us_eval_record_free(&rec[i]);
    for (int i = 0; i < n_prep; i++)
        us_eval_sample_free(&prep[i].s), free(prep[i].ids), free(prep[i].needle);
    free(rec), free(prep), free(rows);
    us_eval_haystack_free(&hay);
    eval_video_free(&video);
    us_llm_free(&llm);
    return status;
}
