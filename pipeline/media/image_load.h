/* image_load.h: image files (PNG, JPEG, BMP, GIF's first frame, binary PNM) to RGB8, through
 * stb_image. The other formats stb_image knows (TGA, PSD, HDR, PIC) are refused as unknown, and so are
 * headers that claim more pixels than the file could hold; images over 8192 x 8192 pixels are
 * US_ERR_UNSUPPORTED.
 *
 *   us_image img = {0};
 *   us_error err;
 *   if (us_image_load("photo.jpg", &img, &err)) { fprintf(stderr, "%s\n", err.msg); ... }
 *   ... img.rgb: [img.height, img.width, 3] ...
 *   us_image_free(&img);
 *
 * Grey images are replicated to three channels; transparency (an alpha channel, or a PNG tRNS
 * colour) is composited onto white exactly as transformers' convert_to_rgb does with PIL (older
 * transformers dropped alpha instead); 16-bit samples keep their high byte. EXIF orientation is not applied (neither
 * does the Hugging Face processor). JPEG: stb_image's decoder is not libjpeg's, so the pixels may
 * differ from PIL's by a few levels (the test measures how many). Errors name the file and give
 * stb_image's reason: missing or unreadable (US_ERR_IO), empty, unknown or corrupt (US_ERR_FORMAT), too
 * large (US_ERR_UNSUPPORTED). */
#ifndef UNISPARSE_IMAGE_LOAD_H
#define UNISPARSE_IMAGE_LOAD_H

#include "unisparse/attention.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *rgb; /* [height, width, 3], rows packed; owned, freed by us_image_free */
    int width, height;
} us_image;

us_status us_image_load(const char *path, us_image *out, us_error *err);
/* The same from bytes in memory; name is only for messages. */
us_status us_image_load_memory(const void *data, size_t size, const char *name, us_image *out, us_error *err);
/* Frees img->rgb and zeroes *img; a zeroed image is fine. */
void us_image_free(us_image *img);

#endif
