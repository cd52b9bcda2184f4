/* eval_needle.c: the needle frame and its place (eval_needle.h). */
#include "eval_needle.h"

#include <math.h>
#include <string.h>

#define GLYPH_W 5
#define GLYPH_H 7
#define GAP     1 /* columns between glyphs, in font pixels */

/* 5 x 7 digits, one byte per row, bit 4 the leftmost column (the classic HD44780 shapes: their
 * strokes are one font pixel wide everywhere, so scaling keeps them uniform). */
static const uint8_t g_digits[10][GLYPH_H] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
};

us_status us_eval_needle_frame(const char *digits, int w, int h, uint8_t *rgb, int box[4], us_error *err)
{
    const int nd = digits ? (int)strlen(digits) : 0;
    if (nd < 1 || nd > 8 || strspn(digits, "0123456789") != (size_t)nd)
        return us_error_set(err, US_ERR_INVALID, "needle frame: '%s' is not 1 to 8 digits", digits ? digits : "");
    const int tw = nd * (GLYPH_W + GAP) - GAP; /* the text in font pixels */
    if (w < tw || h < GLYPH_H)
        return us_error_set(err, US_ERR_INVALID,
                            "needle frame: a %dx%d frame is too small for %d digits (at least %dx%d)", w, h, nd, tw,
                            GLYPH_H);
    int scale = (int)floor(0.8 * w / tw);
    const int sh = (int)floor(0.6 * h / GLYPH_H);
    if (sh < scale) scale = sh;
    if (scale < 1) scale = 1;
    const int x0 = (w - tw * scale) / 2, y0 = (h - GLYPH_H * scale) / 2;

    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        rgb[3 * i + 0] = US_EVAL_NEEDLE_BG_R;
        rgb[3 * i + 1] = US_EVAL_NEEDLE_BG_G;
        rgb[3 * i + 2] = US_EVAL_NEEDLE_BG_B;
    }
    for (int d = 0; d < nd; d++) {
        const uint8_t *g = g_digits[digits[d] - '0'];
        const int gx = x0 + d * (GLYPH_W + GAP) * scale;
        for (int y = 0; y < GLYPH_H * scale; y++)
            for (int x = 0; x < GLYPH_W * scale; x++)
                if (g[y / scale] >> (GLYPH_W - 1 - x / scale) & 1)
                    memset(rgb + 3 * ((size_t)(y0 + y) * (size_t)w + (size_t)(gx + x)), US_EVAL_NEEDLE_INK, 3);
    }
    if (box) box[0] = x0, box[1] = y0, box[2] = x0 + tw * scale, box[3] = y0 + GLYPH_H * scale;
    return US_OK;
}

int us_eval_needle_index(double depth, int n_frames)
{
    if (n_frames <= 1 || !(depth > 0.0)) return 0; /* NaN lands first, too */
    if (depth >= 1.0) return n_frames - 1;
    return (int)lround(depth * (n_frames - 1));
}

void us_eval_needle_splice(const float *hay, int n_frames, const float *needle, int64_t block, int at, float *out)
{
    for (int f = 0; f < n_frames; f++)
        memcpy(out + (size_t)f * (size_t)block, f == at ? needle : hay + (size_t)f * (size_t)block,
               (size_t)block * sizeof *out);
}
