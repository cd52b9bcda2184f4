/* video_prompt.c: the vqa prompt's text (see video_prompt.h). */
#include "video_prompt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TURN_OPEN "<bos><start_of_turn>user\n"
#define TURN_CLOSE "<end_of_turn>\n<start_of_turn>model\n"
#define IMAGE_MARK "<start_of_image>"

int us_video_prompt_label(int64_t index, double time_s, char buf[US_VIDEO_PROMPT_LABEL_MAX])
{
    long long mm = (long long)(time_s / 60.0);
    char sec[32];
    snprintf(sec, sizeof sec, "%04.1f", time_s - 60.0 * (double)mm);
    if (!strcmp(sec, "60.0")) /* 59.95 s and up round into the next minute */
        mm++, memcpy(sec, "00.0", 5);
    return snprintf(buf, US_VIDEO_PROMPT_LABEL_MAX, "Frame %lld at %02lld:%s:", (long long)index + 1, mm, sec);
}

us_status us_video_prompt_prefix(const double *times_s, int64_t n_frames, char **out, us_error *err)
{
    *out = NULL;
    if (n_frames < 0 || (n_frames > 0 && !times_s) || n_frames > (INT64_C(1) << 24))
        return us_error_set(err, US_ERR_INVALID, "%lld frames: need 0 .. 2^24 frames and their times",
                            (long long)n_frames);
    for (int64_t i = 0; i < n_frames; i++)
        if (!isfinite(times_s[i]) || times_s[i] < 0.0 || times_s[i] > 1e12)
            return us_error_set(err, US_ERR_INVALID, "frame %lld: time %g s is not a time in a video",
                                (long long)i + 1, times_s[i]);
    const size_t per = US_VIDEO_PROMPT_LABEL_MAX + sizeof IMAGE_MARK;
    char *s = malloc(sizeof TURN_OPEN + (size_t)n_frames * per);
    if (!s) return us_error_set(err, US_ERR_NOMEM, "no memory for the prompt of %lld frames", (long long)n_frames);
    size_t used = strlen(TURN_OPEN);
    memcpy(s, TURN_OPEN, used + 1);
    for (int64_t i = 0; i < n_frames; i++) {
        used += (size_t)us_video_prompt_label(i, times_s[i], s + used);
        memcpy(s + used, IMAGE_MARK, sizeof IMAGE_MARK), used += sizeof IMAGE_MARK - 1;
    }
    *out = s;
    return US_OK;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

us_status us_video_prompt_question(const char *question, char **out, us_error *err)
{
    *out = NULL;
    if (!question) return us_error_set(err, US_ERR_INVALID, "the question is NULL");
    while (is_space(*question)) question++;
    size_t n = strlen(question);
    while (n && is_space(question[n - 1])) n--;
    char *s = malloc(n + sizeof TURN_CLOSE);
    if (!s) return us_error_set(err, US_ERR_NOMEM, "no memory for a question of %zu bytes", n);
    memcpy(s, question, n), memcpy(s + n, TURN_CLOSE, sizeof TURN_CLOSE);
    *out = s;
    return US_OK;
}
