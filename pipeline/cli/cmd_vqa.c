/* cmd_vqa.c: `unisparse vqa`: questions about a video, answered by a Gemma 3 vision checkpoint.
 *
 * Frames are sampled (--frames N uniform over the duration: by default the first keyframe inside each
 * of N equal intervals, which decodes a few frames per sample instead of half a GOP, or with --exact
 * the frame at each interval's centre; or --fps F), each decoded, resized and
 * encoded as it comes (the video is never held whole), and shown to the model in one user turn, each
 * after its timestamp: "Frame 1 at 00:03.2:<image>" (the text: video_prompt.h). That prefix is
 * prefilled once; each question then runs from the prefix's KV cache (the cache is cut back to the
 * prefix between questions), so a list of questions costs one video prefill. Exit status: 0 success,
 * 1 bad input or failure, 2 bad usage. */
#include "commands.h"

#ifdef US_HAVE_VIDEO
#include "document.h"
#include "generate.h"
#include "options.h"
#include "progress.h"
#include "stats.h"
#include "video_prompt.h"
#include "video_reader.h"
#include "visual_prompt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUESTIONS 1024

static const char *const USAGE = "unisparse vqa --model DIR --video FILE (--question TEXT | --questions FILE) [options]";
static const char *const SUMMARY =
    "Answers questions about a video with a Gemma 3 vision checkpoint on the CPU: frames sampled\n"
    "uniformly (--frames) or at a rate (--fps), shown with their timestamps, one prefill of the video\n"
    "shared by every question. Supported checkpoints: Gemma 3 with a vision tower (4B, 12B, 27B;\n"
    "Gemma3ForConditionalGeneration Hugging Face directories, safetensors). Text-only checkpoints such\n"
    "as the 270M GGUF have no vision tower and are refused.";

/* Splits the questions file into non-empty lines (in place). */
static int split_lines(char *text, char **out, int max)
{
    int n = 0;
    for (char *line = strtok(text, "\r\n"); line && n < max; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        if (*line) out[n++] = line;
    }
    return n;
}

static void ui_prefill(void *user, int64_t done, int64_t total)
{
    us_progress *bar = user;
    char what[64];
    snprintf(what, sizeof what, "%lld / %lld tokens", (long long)done, (long long)total);
    us_progress_set(bar, (int)(done * 100 / (total ? total : 1)), 100, what);
}

int cmd_vqa(int argc, char **argv)
{
    const char *model_path = NULL, *video_path = NULL, *question = NULL, *questions_file = NULL;
    const char *attention = "unisparse";
    int frames = 0, threads = 0;
    float fps = 0.0f;
    bool json = false, exact = false;
    us_gen_params gp = us_gen_params_default();
    gp.max_tokens = 64;
    const us_option opts[] = {
        {"model", US_OPT_STRING, &model_path, "DIR", "Gemma 3 vision checkpoint (Hugging Face directory)"},
        {"video", US_OPT_STRING, &video_path, "FILE", "the video (any container and codec FFmpeg reads)"},
        {"question", US_OPT_STRING, &question, "TEXT", "the question"},
        {"questions", US_OPT_STRING, &questions_file, "FILE", "questions, one per line, sharing one video prefill"},
        {"frames", US_OPT_INT, &frames, "N", "frames sampled uniformly over the duration (default 8)"},
        {"fps", US_OPT_FLOAT, &fps, "F", "frames per second instead of --frames"},
        {"exact", US_OPT_FLAG, &exact, NULL,
         "--frames: the frame at each interval's centre, not the first keyframe inside the interval (slower)"},
        {"attention", US_OPT_STRING, &attention, "M",
         "global layers' prefill attention: dense, unisparse, xattention, flexprefill, minference"},
        {"max-tokens", US_OPT_INT, &gp.max_tokens, "N", "answer tokens at most"},
        {"threads", US_OPT_INT, &threads, "T", "CPU threads, 0 = all"},
        {"json", US_OPT_FLAG, &json, NULL, "print one JSON object (answers, frames, tokens, timings, density)"},
        {0}};
    int rc = us_options_parse(opts, argc, argv, USAGE, SUMMARY, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!model_path || !video_path || !!question == !!questions_file) {
        fprintf(stderr, "unisparse vqa: need --model, --video and exactly one of --question and --questions\n");
        return 2;
    }
    if (frames && fps > 0.0f) {
        fprintf(stderr, "unisparse vqa: give --frames or --fps, not both\n");
        return 2;
    }
    if (frames < 0 || fps < 0.0f || !isfinite(fps) || gp.max_tokens < 1 || threads < 0) {
        fprintf(stderr, "unisparse vqa: need --frames >= 1, --fps > 0, --max-tokens >= 1, --threads >= 0\n");
        return 2;
    }
    if (!frames && fps == 0.0f) frames = 8;
    const int meth = us_method_parse(attention);
    if (meth < 0 || meth == US_METHOD_ASHAPE) {
        fprintf(stderr, "unisparse vqa: --attention %s: must be dense, unisparse, xattention, flexprefill or "
                        "minference\n",
                attention);
        return 2;
    }

    us_error err;
    int status = 1, n_q = 0;
    char *qtext = NULL, *qs[MAX_QUESTIONS];
    us_llm *llm = NULL;
    us_visual_prompt *vp = NULL;
    us_video *video = NULL;
    us_gemma3_model *m = NULL;
    char *prefix = NULL;
    int32_t *prefix_ids = NULL, **q_ids = NULL;
    int64_t n_prefix = 0, *n_qids = NULL;
    double *frame_t = NULL;
    cJSON *out = NULL, *answers = NULL;
    if (questions_file) {
        size_t len = 0;
        if (us_document_read(questions_file, 1 << 20, &qtext, &len, &err)) {
            fprintf(stderr, "unisparse vqa: questions: %s\n", err.msg);
            return 1;
        }
        n_q = split_lines(qtext, qs, MAX_QUESTIONS);
    } else {
        qs[0] = (char *)question;
        n_q = 1;
    }

    const double t_load = us_wall_ms();
    if (us_llm_load(model_path, &llm, &err) || us_visual_prompt_create(llm, threads, &vp, &err)) {
        fprintf(stderr, "unisparse vqa: %s\n", err.msg);
        goto done;
    }
    const double load_ms = us_wall_ms() - t_load;

    /* frames: decode, preprocess and encode one at a time */
    if (us_video_open(video_path, threads, &video, &err) ||
        (frames ? (exact ? us_video_sample_by_count(video, frames, &err)
                         : us_video_sample_by_count_keyframes(video, frames, &err))
                : us_video_sample_by_rate(video, fps, &err))) {
        fprintf(stderr, "unisparse vqa: %s\n", err.msg);
        goto done;
    }
    const int64_t n_frames = us_video_sample_total(video);
    frame_t = malloc((size_t)n_frames * sizeof *frame_t);
    if (!frame_t) {
        fprintf(stderr, "unisparse vqa: no memory for %lld frames\n", (long long)n_frames);
        goto done;
    }
    us_progress bar;
    us_progress_start(&bar, "frames", (int)n_frames);
    double decode_ms = 0.0, encode_ms = 0.0, t0 = us_wall_ms();
    us_video_frame f;
    int r;
    while ((r = us_video_next_frame(video, &f, &err)) == 1) {
        const double t1 = us_wall_ms();
        decode_ms += t1 - t0;
        if (us_visual_prompt_add_image(vp, f.rgb, f.width, f.height, &err)) {
            us_progress_end(&bar);
            fprintf(stderr, "unisparse vqa: %s: frame %lld: %s\n", video_path, (long long)f.index, err.msg);
            goto done;
        }
        t0 = us_wall_ms();
        encode_ms += t0 - t1;
        frame_t[f.index] = f.time_s;
        char what[48];
        snprintf(what, sizeof what, "frame at %.1f s", f.time_s);
        us_progress_step(&bar, what);
    }
    us_progress_end(&bar);
    if (r < 0) {
        fprintf(stderr, "unisparse vqa: %s\n", err.msg);
        goto done;
    }
    us_video_close(&video);

    /* token ids: the shared prefix (every frame after its timestamp), then each question closing the
     * user turn */
    if (us_video_prompt_prefix(frame_t, us_visual_prompt_n_images(vp), &prefix, &err) ||
        us_visual_prompt_encode(vp, prefix, US_PROMPT_RAW, &prefix_ids, &n_prefix, &err)) {
        fprintf(stderr, "unisparse vqa: %s\n", err.msg);
        goto done;
    }
    q_ids = calloc((size_t)n_q, sizeof *q_ids);
    n_qids = calloc((size_t)n_q, sizeof *n_qids);
    if (!q_ids || !n_qids) goto done;
    int64_t longest = 0;
    for (int i = 0; i < n_q; i++) {
        char *turn = NULL; /* the frames end in "\n\n" */
        us_status s = us_video_prompt_question(qs[i], &turn, &err);
        if (!s) s = us_llm_encode(llm, turn, US_PROMPT_RAW, &q_ids[i], &n_qids[i], &err);
        free(turn);
        if (s) {
            fprintf(stderr, "unisparse vqa: question %d: %s\n", i + 1, err.msg);
            goto done;
        }
        if (n_qids[i] > longest) longest = n_qids[i];
    }
    const int64_t ctx = llm->w->cfg.max_position_embeddings, need = n_prefix + longest + gp.max_tokens;
    if (need > ctx) {
        fprintf(stderr,
                "unisparse vqa: %s: %lld frames make %lld prompt tokens; with the longest question (%lld) and "
                "--max-tokens %d that is %lld, over the model's context of %lld (use fewer --frames)\n",
                video_path, (long long)n_frames, (long long)n_prefix, (long long)longest, gp.max_tokens,
                (long long)need, (long long)ctx);
        goto done;
    }
    us_gemma3_opts mo = us_gemma3_opts_default();
    mo.method = (us_method)meth;
    mo.threads = threads;
    mo.max_ctx = need;
    if (us_gemma3_model_create(llm->w, &mo, &m, &err)) {
        fprintf(stderr, "unisparse vqa: %s\n", err.msg);
        goto done;
    }

    /* prefill the video once */
    us_progress_start(&bar, "prefill", 100);
    us_gen_hooks hooks = {&bar, ui_prefill, NULL, NULL};
    us_gen_params pre = gp;
    pre.max_tokens = 0;
    us_gen_result res;
    int64_t n_rows = 0;
    const float *rows = us_visual_prompt_rows(vp, &n_rows);
    if (us_generate_embeds(m, llm, prefix_ids, n_prefix, rows, n_rows, &pre, &hooks, &res, &err)) {
        us_progress_end(&bar);
        fprintf(stderr, "unisparse vqa: prefill: %s\n", err.msg);
        goto done;
    }
    us_progress_end(&bar);
    const double prefix_ms = res.prefill_ms;
    const us_gemma3_attn_stats attn = res.attn;
    us_gen_result_free(&res);

    out = cJSON_CreateObject();
    answers = cJSON_AddArrayToObject(out, "answers");
    for (int i = 0; i < n_q; i++) {
        if (us_gemma3_truncate(m, n_prefix, &err) ||
            us_generate(m, llm, q_ids[i], n_qids[i], &gp, NULL, &res, &err)) {
            fprintf(stderr, "unisparse vqa: question %d: %s\n", i + 1, err.msg);
            goto done;
        }
        char *text = NULL;
        if (us_llm_decode(llm, res.ids, res.n, &text, &err)) {
            us_gen_result_free(&res);
            fprintf(stderr, "unisparse vqa: %s\n", err.msg);
            goto done;
        }
        if (!json) printf("%s%s\n", n_q > 1 ? "Q: " : "", n_q > 1 ? qs[i] : text);
        if (!json && n_q > 1) printf("A: %s\n\n", text);
        cJSON *a = cJSON_CreateObject(), *ids = cJSON_CreateArray();
        cJSON_AddStringToObject(a, "question", qs[i]);
        cJSON_AddStringToObject(a, "answer", text);
        for (int k = 0; k < res.n; k++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(res.ids[k]));
        cJSON_AddItemToObject(a, "ids", ids);
        cJSON_AddStringToObject(a, "stop", res.stop);
        cJSON_AddNumberToObject(a, "question_tokens", (double)n_qids[i]);
        cJSON_AddNumberToObject(a, "prefill_ms", res.prefill_ms);
        cJSON_AddNumberToObject(a, "decode_ms", res.decode_ms);
        cJSON_AddItemToArray(answers, a);
        free(text);
        us_gen_result_free(&res);
    }
    if (json) {
        cJSON_AddStringToObject(out, "model", model_path);
        cJSON_AddStringToObject(out, "video", video_path);
        cJSON_AddStringToObject(out, "attention", us_method_name((us_method)meth));
        cJSON *fr = cJSON_AddArrayToObject(out, "frames");
        for (int64_t i = 0; i < n_frames; i++) cJSON_AddItemToArray(fr, cJSON_CreateNumber(frame_t[i]));
        cJSON_AddNumberToObject(out, "prefix_tokens", (double)n_prefix);
        cJSON *t = cJSON_AddObjectToObject(out, "timings_ms");
        cJSON_AddNumberToObject(t, "load", load_ms);
        cJSON_AddNumberToObject(t, "decode_video", decode_ms);
        cJSON_AddNumberToObject(t, "encode_images", encode_ms);
        cJSON_AddNumberToObject(t, "prefill_video", prefix_ms);
        cJSON_AddNumberToObject(t, "global_attention", attn.attn_ms);
        cJSON_AddNumberToObject(out, "attention_density",
                                attn.visible_pairs > 0 ? attn.kept_pairs / attn.visible_pairs : 1.0);
        char *js = cJSON_PrintUnformatted(out);
        printf("%s\n", js ? js : "{}");
        free(js);
    } else {
        fprintf(stderr, "[%lld frames, %lld prompt tokens; decode %.0f ms, encode %.0f ms, prefill %.0f ms]\n",
                (long long)n_frames, (long long)n_prefix, decode_ms, encode_ms, prefix_ms);
    }
    status = 0;
done:
    cJSON_Delete(out);
    for (int i = 0; q_ids && i < n_q; i++) free(q_ids[i]);
    free(q_ids), free(n_qids), free(prefix_ids), free(prefix), free(frame_t), free(qtext);
    us_gemma3_model_free(&m);
    us_video_close(&video);
    us_visual_prompt_free(&vp);
    us_llm_free(&llm);
    return status;
}

#else /* built without FFmpeg */
#include <stdio.h>

int cmd_vqa(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "unisparse vqa: this build has no video support (FFmpeg's libav* were not found at build time)\n");
    return 1;
}
#endif
