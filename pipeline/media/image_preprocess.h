/* image_preprocess.h: RGB8 image -> the vision tower's input, as Hugging Face's Gemma 3 image
 * processor (the PIL backend, Gemma3ImageProcessorPil) computes it.
 *
 *   float *px = malloc(3 * 896 * 896 * sizeof *px);                    // (3, S, S), CHW
 *   if (us_image_preprocess(img.rgb, img.width, img.height, 896, px, &err)) ...
 *
 * Steps: resize to S x S ignoring the aspect ratio with PIL's BILINEAR filter, then x / 255, then
 * (x - 0.5) / 0.5, channel-first. PIL's BILINEAR is a triangle filter whose support widens with the
 * reduction factor (so it is antialiased when shrinking), applied in two passes in 22-bit fixed point
 * with the intermediate rounded to uint8: horizontal then vertical, except (since Pillow 13) vertical
 * first when the height loses more than twice as many pixels as the width. Older Pillow always went
 * horizontal first; the two orders differ by one level at some pixels, and only in that case.
 * us_image_resize_bilinear reproduces Pillow 13's Resample.c bit for bit, and the float steps are
 * done in transformers' precisions (x * (1/255) in double rounded to float, then float arithmetic),
 * so the output is identical, not merely close. */
#ifndef UNISPARSE_IMAGE_PREPROCESS_H
#define UNISPARSE_IMAGE_PREPROCESS_H

#include "unisparse/attention.h"

#include <stdint.h>

/* src: [h, w, 3] RGB8 packed -> dst: [oh, ow, 3] RGB8 packed, as PIL's Image.resize((ow, oh),
 * Image.BILINEAR). All sizes >= 1; src and dst must not overlap. */
us_status us_image_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh, us_error *err);

/* src: [h, w, 3] RGB8 packed -> out: (3, size, size) float, CHW, values in [-1, 1]. */
us_status us_image_preprocess(const uint8_t *src, int w, int h, int size, float *out, us_error *err);

#endif
