/* image_load.c: see image_load.h. stb_image comes from Debian's libstb (pkg-config stb), so no
 * implementation is compiled here. Every image is decoded to RGBA and flattened onto white with
 * Pillow's integer alpha_composite (src/libImaging/AlphaComposite.c, 7 extra bits, divisions by 255
 * rounded), which is what transformers' convert_to_rgb does; an opaque pixel comes out unchanged. */
#include "image_load.h"

#include <errno.h>
#include <limits.h>
#include <stb_image.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SHIFT_DIV255(a) ((((a) >> 8) + (a)) >> 8) /* Pillow's SHIFTFORDIV255 */

/* One channel of (c, alpha a) over white, as Pillow's alpha_composite with an opaque white destination:
 * coef1 = a * 255 * 255 * 128 / (255 * 255) and coef2 = 255 * 128 - coef1. */
static uint8_t over_white(uint32_t c, uint32_t a)
{
    if (a == 0) return 255;
    uint32_t outa255 = a * 255 + 255 * (255 - a);
    uint32_t coef1 = a * 255 * 255 * (1u << 7) / outa255;
    uint32_t coef2 = 255 * (1u << 7) - coef1;
    uint32_t t = c * coef1 + 255 * coef2;
    return (uint8_t)(SHIFT_DIV255(t + (0x80u << 7)) >> 7);
}

/* RGBA [w * h * 4] -> RGB [w * h * 3] in place (the RGB image is the shorter, written front to back). */
static void flatten_onto_white(uint8_t *px, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t a = px[4 * i + 3];
        uint8_t r = px[4 * i], g = px[4 * i + 1], b = px[4 * i + 2];
        if (a != 255) r = over_white(r, a), g = over_white(g, a), b = over_white(b, a);
        px[3 * i] = r, px[3 * i + 1] = g, px[3 * i + 2] = b;
    }
}

static us_status decoded(uint8_t *px, int w, int h, const char *name, us_image *out, us_error *err)
{
    if (!px) {
        const char *why = stbi_failure_reason();
        return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: %s", name, why ? why : "unknown error");
    }
    flatten_onto_white(px, (size_t)w * (size_t)h);
    out->rgb = px;
    out->width = w;
    out->height = h;
    return US_OK;
}

us_status us_image_load(const char *path, us_image *out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_image_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !path[0]) return us_error_set(err, US_ERR_INVALID, "us_image_load: no path");
    /* stb_image says only "can't fopen"; the OS says why. */
    struct stat sb;
    if (stat(path, &sb) != 0) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return us_error_set(err, US_ERR_IO, "%s: is a directory, not an image", path);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: empty file (0 bytes), not an image", path);
    FILE *f = fopen(path, "rb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int w = 0, h = 0, channels = 0;
    uint8_t *px = stbi_load_from_file(f, &w, &h, &channels, 4);
    fclose(f);
    return decoded(px, w, h, path, out, err);
}

us_status us_image_load_memory(const void *data, size_t size, const char *name, us_image *out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_image_load_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "(memory)";
    if (!data || size == 0) return us_error_set(err, US_ERR_FORMAT, "%s: empty buffer, not an image", name);
    if (size > INT_MAX)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: %zu bytes: too large for stb_image", name, size);
    int w = 0, h = 0, channels = 0;
    uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &channels, 4);
    return decoded(px, w, h, name, out, err);
}

void us_image_free(us_image *img)
{
    if (!img) return;
    stbi_image_free(img->rgb);
    memset(img, 0, sizeof *img);
}
