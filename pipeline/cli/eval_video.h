/* eval_video.h: the haystack video of `unisparse eval`'s video tasks: its sampled frames encoded once,
 * and each sample's prompt and image rows with the needle frame spliced in.
 *
 *   eval_video *v = NULL;
 *   eval_video_open(llm, "clip.mp4", 16, 0, &bar, &v, &err);  // samples and encodes 16 frames
 *   float *needle;  int32_t *ids;  int64_t n, rows;
 *   eval_video_prepare(v, &sample, &needle, &ids, &n, &err);  // sample from video_needle's builder
 *   const float *emb = eval_video_rows(v, needle, sample.needle_frame, &rows);
 *   us_eval_run(model, llm, ids, n, emb, rows, ...);           // once per method
 *   free(needle), free(ids);  eval_video_free(&v);
 *
 * Frames are sampled as `unisparse vqa --frames N --exact` samples them (the frame at the centre of
 * each of N equal intervals) and the prompt is vqa's: each frame after its timestamp, then the question
 * closing the user turn, then the task's answer prefix opening the model's. The needle is drawn at the
 * video's frame size (eval_needle.h) and encoded by the same vision tower; it replaces the rows of one
 * frame and keeps that frame's timestamp, so every sample's prompt ids are the same and only its rows
 * differ. Builds without FFmpeg refuse to open a video (US_ERR_UNSUPPORTED). */
#ifndef UNISPARSE_CLI_EVAL_VIDEO_H
#define UNISPARSE_CLI_EVAL_VIDEO_H

#include "eval_tasks.h"
#include "llm.h"
#include "progress.h"

typedef struct eval_video eval_video;

/* Opens path, samples n_frames (>= 1) and encodes each with llm's vision tower (which it must have);
 * bar (may be NULL) steps once per frame. Errors name the file. */
us_status eval_video_open(const us_llm *llm, const char *path, int n_frames, int threads, us_progress *bar,
                          eval_video **out, us_error *err);
void eval_video_free(eval_video **v);

/* Soft tokens per frame (the model's mm_tokens_per_image). */
int eval_video_tokens_per_frame(const eval_video *v);

/* The needle of a video sample (its expected[0] drawn, encoded): *needle_rows (tokens per frame x
 * hidden), and the prompt's ids; both new arrays (free()). */
us_status eval_video_prepare(eval_video *v, const us_eval_sample *s, float **needle_rows, int32_t **ids, int64_t *n,
                             us_error *err);

/* The sample's image rows: the frames' with the needle's in place of frame `at`. Valid until the next
 * call or eval_video_free. */
const float *eval_video_rows(eval_video *v, const float *needle_rows, int at, int64_t *n_rows);

#endif
