/* eval_video.c: see eval_video.h. */
#include "eval_video.h"

#ifdef US_HAVE_VIDEO
#include "eval_needle.h"
#include "video_prompt.h"
#include "video_reader.h"
#include "visual_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eval_video {
    const us_llm *llm;
    char *path;
    us_visual_prompt *vp; /* the tower; between calls it holds no image */
    int n_frames, width, height;
    int64_t per_frame; /* floats of one frame's rows: tokens per image x hidden */
    float *frames;     /* (n_frames, per_frame): the sampled frames' rows */
    float *spliced;    /* the same with a needle: eval_video_rows */
    int32_t *prefix;   /* ids of the frames after their timestamps: the prompt up to the question */
    int64_t n_prefix;
    uint8_t *needle_rgb; /* (height, width, 3) */
};

void eval_video_free(eval_video **pv)
{
    if (!pv || !*pv) return;
    eval_video *v = *pv;
    us_visual_prompt_free(&v->vp);
    free(v->path), free(v->frames), free(v->spliced), free(v->prefix), free(v->needle_rgb);
    free(v);
    *pv = NULL;
}

int eval_video_tokens_per_frame(const eval_video *v)
{
    return v->llm->w->cfg.mm_tokens_per_image;
}

/* Prefixes err's message with the file's name (the encoder's errors do not know it). */
static us_status name_file(us_error *err, us_status s, const char *path, const char *what)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return us_error_set(err, s, "%s: %s: %s", path, what, msg);
}

/* Decodes and encodes the planned frames; fills v->frames, the frame size and times. */
static us_status encode_frames(eval_video *v, us_video *video, double *times, us_progress *bar, us_error *err)
{
    us_video_frame f;
    int r;
    while ((r = us_video_next_frame(video, &f, err)) == 1) {
        if (f.index == 0) v->width = f.width, v->height = f.height;
        us_status s = us_visual_prompt_add_image(v->vp, f.rgb, f.width, f.height, err);
        if (s) {
            char what[48];
            snprintf(what, sizeof what, "frame %lld", (long long)f.index);
            return name_file(err, s, v->path, what);
        }
        times[f.index] = f.time_s;
        if (bar) {
            char what[48];
            snprintf(what, sizeof what, "frame at %.1f s", f.time_s);
            us_progress_step(bar, what);
        }
    }
    if (r < 0) return (us_status)r;
    int64_t n_rows = 0;
    const float *rows = us_visual_prompt_rows(v->vp, &n_rows);
    if (us_visual_prompt_n_images(v->vp) != v->n_frames)
        return us_error_set(err, US_ERR_FORMAT, "%s: %d frames planned, %d decoded", v->path, v->n_frames,
                            us_visual_prompt_n_images(v->vp));
    memcpy(v->frames, rows, (size_t)v->n_frames * (size_t)v->per_frame * sizeof *rows);
    return US_OK;
}

us_status eval_video_open(const us_llm *llm, const char *path, int n_frames, int threads, us_progress *bar,
                          eval_video **out, us_error *err)
{
    *out = NULL;
    if (n_frames < 1) return us_error_set(err, US_ERR_INVALID, "%s: %d frames; at least 1 is needed", path, n_frames);
    eval_video *v = calloc(1, sizeof *v);
    if (!v) return us_error_set(err, US_ERR_NOMEM, "no memory");
    v->llm = llm, v->n_frames = n_frames;
    v->per_frame = (int64_t)llm->w->cfg.mm_tokens_per_image * llm->w->cfg.hidden_size;
    us_video *video = NULL;
    char *text = NULL;
    double *times = malloc((size_t)n_frames * sizeof *times);
    v->path = strdup(path);
    v->frames = malloc((size_t)n_frames * (size_t)v->per_frame * sizeof *v->frames);
    v->spliced = malloc((size_t)n_frames * (size_t)v->per_frame * sizeof *v->spliced);
    us_status s = !times || !v->path || !v->frames || !v->spliced
                      ? us_error_set(err, US_ERR_NOMEM, "no memory for %d frames' embeddings", n_frames)
                      : US_OK;
    if (!s) s = us_visual_prompt_create(llm, threads, &v->vp, err);
    /* the exact centres, not keyframes: samples must not depend on how the file was cut into GOPs */
    if (!s) s = us_video_open(path, threads, &video, err);
    if (!s) s = us_video_sample_by_count(video, n_frames, err);
    if (!s) s = encode_frames(v, video, times, bar, err);
    us_video_close(&video);
    /* the prompt up to the question, the same for every sample: the needle keeps its frame's time */
    if (!s) s = us_video_prompt_prefix(times, n_frames, &text, err);
    if (!s) s = us_visual_prompt_encode(v->vp, text, US_PROMPT_RAW, &v->prefix, &v->n_prefix, err);
    if (!s && !(v->needle_rgb = malloc((size_t)v->width * (size_t)v->height * 3)))
        s = us_error_set(err, US_ERR_NOMEM, "no memory for a %dx%d frame", v->width, v->height);
    free(text), free(times);
    if (s) {
        eval_video_free(&v);
        return s;
    }
    us_visual_prompt_clear(v->vp);
    *out = v;
    return US_OK;
}

/* ids of text after what the prompt has so far; appended to *ids (n) */
static us_status append_text(const us_llm *llm, const char *text, int32_t **ids, int64_t *n, us_error *err)
{
    int32_t *t = NULL;
    int64_t nt = 0;
    us_status s = us_llm_encode(llm, text, US_PROMPT_RAW, &t, &nt, err);
    int32_t *all = s ? NULL : realloc(*ids, (size_t)(*n + nt) * sizeof *all);
    if (!s && !all) s = us_error_set(err, US_ERR_NOMEM, "no memory for a %lld-token prompt", (long long)(*n + nt));
    if (!s) {
        memcpy(all + *n, t, (size_t)nt * sizeof *t);
        *ids = all, *n += nt;
    }
    free(t);
    return s;
}

us_status eval_video_prepare(eval_video *v, const us_eval_sample *s, float **needle_rows, int32_t **ids, int64_t *n,
                             us_error *err)
{
    *needle_rows = NULL, *ids = NULL, *n = 0;
    if (s->n_expected < 1 || s->needle_frame < 0 || s->needle_frame >= v->n_frames)
        return us_error_set(err, US_ERR_INVALID, "video sample: needle at frame %d of %d, %d expected values",
                            s->needle_frame, v->n_frames, s->n_expected);
    us_status st = us_eval_needle_frame(s->expected[0], v->width, v->height, v->needle_rgb, NULL, err);
    if (st) return name_file(err, st, v->path, "needle frame");
    us_visual_prompt_clear(v->vp);
    st = us_visual_prompt_add_image(v->vp, v->needle_rgb, v->width, v->height, err);
    float *rows = st ? NULL : malloc((size_t)v->per_frame * sizeof *rows);
    if (!st && !rows) st = us_error_set(err, US_ERR_NOMEM, "no memory");
    if (!st) {
        int64_t nr = 0;
        memcpy(rows, us_visual_prompt_rows(v->vp, &nr), (size_t)v->per_frame * sizeof *rows);
    }
    us_visual_prompt_clear(v->vp);
    char *turn = NULL;
    int32_t *all = NULL;
    int64_t na = 0;
    if (!st && !(all = malloc((size_t)v->n_prefix * sizeof *all)))
        st = us_error_set(err, US_ERR_NOMEM, "no memory for a %lld-token prompt", (long long)v->n_prefix);
    if (!st) memcpy(all, v->prefix, (size_t)v->n_prefix * sizeof *all), na = v->n_prefix;
    if (!st) st = us_video_prompt_question(s->question, &turn, err);
    if (!st) st = append_text(v->llm, turn, &all, &na, err);
    if (!st) st = append_text(v->llm, s->answer_prefix, &all, &na, err);
    free(turn);
    if (st) {
        free(rows), free(all);
        return st;
    }
    *needle_rows = rows, *ids = all, *n = na;
    return US_OK;
}

const float *eval_video_rows(eval_video *v, const float *needle_rows, int at, int64_t *n_rows)
{
    us_eval_needle_splice(v->frames, v->n_frames, needle_rows, v->per_frame, at, v->spliced);
    *n_rows = (int64_t)v->n_frames * eval_video_tokens_per_frame(v);
    return v->spliced;
}

#else /* built without FFmpeg */

struct eval_video {
    int unused;
};

us_status eval_video_open(const us_llm *llm, const char *path, int n_frames, int threads, us_progress *bar,
                          eval_video **out, us_error *err)
{
    (void)llm, (void)n_frames, (void)threads, (void)bar;
    *out = NULL;
    return us_error_set(err, US_ERR_UNSUPPORTED,
                        "%s: this build has no video support (FFmpeg's libav* were not found at build time)", path);
}

void eval_video_free(eval_video **v)
{
    if (v) *v = NULL;
}

int eval_video_tokens_per_frame(const eval_video *v)
{
    (void)v;
    return 0;
}

us_status eval_video_prepare(eval_video *v, const us_eval_sample *s, float **needle_rows, int32_t **ids, int64_t *n,
                             us_error *err)
{
    (void)v, (void)s;
    *needle_rows = NULL, *ids = NULL, *n = 0;
    return us_error_set(err, US_ERR_UNSUPPORTED, "this build has no video support");
}

const float *eval_video_rows(eval_video *v, const float *needle_rows, int at, int64_t *n_rows)
{
    (void)v, (void)needle_rows, (void)at;
    *n_rows = 0;
    return NULL;
}
#endif
