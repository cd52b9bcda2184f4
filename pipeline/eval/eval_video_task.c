/* eval_video_task.c: the builder of the video_needle task (eval_tasks.h): the number and the frame it
 * replaces, from the sample's seed and depth, and the question. The frames themselves are the
 * caller's (they need the video reader and the vision tower, which this library does not link). */
#include "eval_needle.h"
#include "eval_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

us_status us_eval_build_video_needle(const us_eval_task *t, const us_eval_video_params *p, us_eval_sample *out,
                                     us_error *err);

/* splitmix64's output function: the seed is already a mixed per-sample value (us_eval_sample_seed) */
static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

us_status us_eval_build_video_needle(const us_eval_task *t, const us_eval_video_params *p, us_eval_sample *out,
                                     us_error *err)
{
    (void)t;
    memset(out, 0, sizeof *out);
    if (p->n_frames < 1)
        return us_error_set(err, US_ERR_INVALID, "video_needle: %d frames; at least 1 is needed", p->n_frames);
    /* 10 .. 999: two or three digits, never a leading zero, so the expected text is the number as read */
    char number[8];
    snprintf(number, sizeof number, "%u", (unsigned)(10 + mix(p->seed) % 990));
    out->question = strdup("One frame of this video shows a large number. What is the number?");
    out->answer_prefix = strdup("The number shown in the video is");
    out->expected[0] = strdup(number);
    if (!out->question || !out->answer_prefix || !out->expected[0]) {
        free(out->expected[0]);
        us_eval_sample_free(out);
        return us_error_set(err, US_ERR_NOMEM, "no memory");
    }
    out->n_expected = 1;
    out->depth = p->depth;
    out->n_needles = 1;
    out->needle_frame = us_eval_needle_index(p->depth, p->n_frames);
    out->needle_pos[0] = p->n_frames > 1 ? (double)out->needle_frame / (double)(p->n_frames - 1) : 0.0;
    out->units = p->n_frames;
    return US_OK;
}
