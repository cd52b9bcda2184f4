/* fuzz_image.c: us_image_load_memory (stb_image: PNG, JPEG, BMP, GIF, TGA, PSD, PNM, HDR; alpha
 * flattened onto white), then the Gemma 3 preprocessing (bilinear resize, normalise) at 32 x 32. */
#include "fuzz_entry.h"

#include "unisparse/attention.h"

#ifndef US_FUZZ_HAVE_MEDIA
int us_fuzz_image(const uint8_t *data, size_t size)
{
    (void)data, (void)size;
    return US_ERR_UNSUPPORTED; /* built without stb_image: no image loader */
}
#else
#include "image_load.h"
#include "image_preprocess.h"

#include <stdlib.h>

#define SIDE 32

int us_fuzz_image(const uint8_t *data, size_t size)
{
    us_image img = {0};
    us_error err;
    us_status s = us_image_load_memory(data, size, "fuzz", &img, &err);
    if (s) return s;
    float *px = malloc(3 * SIDE * SIDE * sizeof *px);
    s = px ? us_image_preprocess(img.rgb, img.width, img.height, SIDE, px, &err) : US_ERR_NOMEM;
    free(px);
    us_image_free(&img);
    return s;
}
#endif
