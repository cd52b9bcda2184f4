/* eval_needle.h: the needle of the video_needle task: a frame showing a number, and its place among
 * the sampled frames of a haystack video.
 *
 *   uint8_t *rgb = malloc((size_t)w * h * 3);  int box[4];
 *   us_eval_needle_frame("417", w, h, rgb, box, &err);     // the frame, at the video's frame size
 *   const int at = us_eval_needle_index(depth, n_frames);  // the sampled frame it replaces
 *   us_eval_needle_splice(hay_rows, n_frames, needle_rows, rows_per_frame * hidden, at, out);
 *
 * The frame is a flat bright background with the digits drawn dark, each glyph of a 5 x 7 bitmap
 * font scaled up by one integer factor so the number spans about 80% of the width or 60% of the
 * height (whichever binds first), centred. Big, high-contrast, axis-aligned strokes survive the vision
 * tower's downscaling (896 px for Gemma 3, 48 px for the test fixture) better than any thin font.
 *
 * The needle is spliced into the decoded frame sequence: it replaces one sampled frame and takes that
 * frame's timestamp. The model sees frames, not the bitstream, so this is what re-encoding the video
 * with that frame replaced would show it, minus the codec's loss on the needle. Because the vision
 * tower encodes each image on its own, splicing the needle's rows into the haystack frames' rows is the
 * same as encoding the spliced sequence, which lets a run encode the haystack frames once. */
#ifndef UNISPARSE_EVAL_NEEDLE_H
#define UNISPARSE_EVAL_NEEDLE_H

#include "unisparse/attention.h"

#include <stdint.h>

/* The colours (RGB8) of the needle frame. */
#define US_EVAL_NEEDLE_BG_R 255
#define US_EVAL_NEEDLE_BG_G 214
#define US_EVAL_NEEDLE_BG_B 48
#define US_EVAL_NEEDLE_INK  24 /* the digits: grey level of R, G and B */

/* Draws digits ("0".."9", 1 to 8 of them) into rgb [h, w, 3]. box (may be NULL) receives the drawn
 * text's bounding box {x0, y0, x1, y1}, ends exclusive; outside it every pixel is background. An
 * error (US_ERR_INVALID) names the size when the frame is too small for the text at scale 1. */
us_status us_eval_needle_frame(const char *digits, int w, int h, uint8_t *rgb, int box[4], us_error *err);

/* The index of the sampled frame (of n_frames >= 1) that a needle at depth [0, 1] replaces: the nearest
 * to depth * (n_frames - 1), so depth 0 is the first frame and depth 1 the last. */
int us_eval_needle_index(double depth, int n_frames);

/* out = the haystack frames' rows (n_frames blocks of `block` floats, in order) with block `at`
 * replaced by the needle's. */
void us_eval_needle_splice(const float *hay, int n_frames, const float *needle, int64_t block, int at, float *out);

#endif
