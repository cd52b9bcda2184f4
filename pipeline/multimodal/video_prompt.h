/* video_prompt.h: the text of `unisparse vqa`'s prompt: video frames after their timestamps in one
 * Gemma 3 user turn, then a question.
 *
 *   char *prefix = NULL, *turn = NULL;
 *   us_video_prompt_prefix(times_s, n_frames, &prefix, &err);   // with one image added per frame
 *   us_visual_prompt_encode(vp, prefix, US_PROMPT_RAW, &prefix_ids, &n_prefix, &err);
 *   us_video_prompt_question("Who speaks first?", &turn, &err);
 *   us_llm_encode(llm, turn, US_PROMPT_RAW, &q_ids, &n_q, &err);  // prefix_ids + q_ids: the prompt
 *
 * The whole prompt is what Gemma 3's chat template renders for one user turn whose content is, per
 * frame, the text "Frame i at mm:ss.s:" and the image, then the question as text:
 *
 *   <bos><start_of_turn>user\nFrame 1 at 00:03.2:<start_of_image>Frame 2 at 00:09.6:<start_of_image>
 *   Who speaks first?<end_of_turn>\n<start_of_turn>model\n
 *
 * (the template trims each text item, so no space precedes "<start_of_image>" and the question is
 * trimmed; each "<start_of_image>" then becomes Gemma3Processor's "\n\n<start_of_image>" ...
 * "<end_of_image>\n\n"). The prefix ends with the last image's "\n\n"; encoding it apart from the
 * question gives the ids of the whole text because Gemma 3's vocabulary has no piece joining a newline
 * to anything but newlines, and the question starts with none (trimmed).
 * tests/test_prompt_assembly.c checks all of it against transformers. */
#ifndef UNISPARSE_VIDEO_PROMPT_H
#define UNISPARSE_VIDEO_PROMPT_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

/* The longest timestamp label us_video_prompt_label writes, with its NUL. */
#define US_VIDEO_PROMPT_LABEL_MAX 64

/* "Frame {index + 1} at mm:ss.s:" (minutes at least two digits, seconds rounded to tenths, never
 * "60.0") into buf; returns its length. time_s >= 0. */
int us_video_prompt_label(int64_t index, double time_s, char buf[US_VIDEO_PROMPT_LABEL_MAX]);

/* "<bos><start_of_turn>user\n" + per frame i: label(i, times_s[i]) + "<start_of_image>", into a new
 * string *out (free()). n_frames >= 0; times in seconds from the video's start, finite, >= 0. */
us_status us_video_prompt_prefix(const double *times_s, int64_t n_frames, char **out, us_error *err);

/* The question, trimmed of ASCII whitespace as the template trims it, closing the user turn and
 * opening the model's: question + "<end_of_turn>\n<start_of_turn>model\n", into a new string *out. */
us_status us_video_prompt_question(const char *question, char **out, us_error *err);

#endif
