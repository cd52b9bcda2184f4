/* eval_canvas.h: a tiny RGB raster for report plots: filled rectangles, thick lines, discs, text
 * (stb_easy_font's segment font, scaled), and PNG encoding (stb_image_write).
 *
 *   us_canvas c;
 *   us_canvas_init(&c, 640, 480, US_WHITE, &err);
 *   us_canvas_line(&c, 10, 10, 200, 100, 2.0f, (us_rgb){200, 0, 0});
 *   us_canvas_text(&c, 20, 20, 2, "title", US_BLACK);
 *   unsigned char *png;  size_t len;
 *   us_canvas_png(&c, &png, &len, &err);   free(png);  us_canvas_free(&c);
 *
 * Coordinates are pixels, x to the right and y downwards; whatever falls outside is clipped. No
 * antialiasing: plots of a few dozen points need none. */
#ifndef UNISPARSE_EVAL_CANVAS_H
#define UNISPARSE_EVAL_CANVAS_H

#include "unisparse/attention.h"

#include <stddef.h>

typedef struct {
    unsigned char r, g, b;
} us_rgb;

#define US_WHITE ((us_rgb){255, 255, 255})
#define US_BLACK ((us_rgb){0, 0, 0})

typedef struct {
    int w, h;
    unsigned char *px; /* (h, w, 3), owned */
} us_canvas;

us_status us_canvas_init(us_canvas *c, int w, int h, us_rgb bg, us_error *err);
void us_canvas_free(us_canvas *c);

void us_canvas_rect(us_canvas *c, int x0, int y0, int x1, int y1, us_rgb col); /* [x0, x1) x [y0, y1) */
void us_canvas_disc(us_canvas *c, float cx, float cy, float r, us_rgb col);
void us_canvas_line(us_canvas *c, float x0, float y0, float x1, float y1, float width, us_rgb col);
/* ASCII text with its top-left corner at (x, y); scale >= 1 multiplies the ~6 x 9 px glyphs. */
void us_canvas_text(us_canvas *c, int x, int y, int scale, const char *text, us_rgb col);
int us_canvas_text_width(const char *text, int scale);
int us_canvas_text_height(int scale);

/* The canvas as a PNG file's bytes in a new buffer (free()). */
us_status us_canvas_png(const us_canvas *c, unsigned char **png, size_t *len, us_error *err);

#endif
