/* eval_canvas.c: see eval_canvas.h. The stb headers come from Debian's libstb-dev; without them
 * (US_EVAL_HAVE_STB undefined) text is not drawn and us_canvas_png reports what to install. */
#include "eval_canvas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef US_EVAL_HAVE_STB
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* the header's helpers we do not call */
#include <stb_easy_font.h>
#pragma GCC diagnostic pop
#include <stb_image_write.h>
#endif

us_status us_canvas_init(us_canvas *c, int w, int h, us_rgb bg, us_error *err)
{
    memset(c, 0, sizeof *c);
    if (w < 1 || h < 1 || w > 16384 || h > 16384)
        return us_error_set(err, US_ERR_INVALID, "canvas %d x %d outside 1 .. 16384", w, h);
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px) return us_error_set(err, US_ERR_NOMEM, "no memory for a %d x %d canvas", w, h);
    c->w = w, c->h = h;
    us_canvas_rect(c, 0, 0, w, h, bg);
    return US_OK;
}

void us_canvas_free(us_canvas *c)
{
    free(c->px);
    memset(c, 0, sizeof *c);
}

static void put(us_canvas *c, int x, int y, us_rgb col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = col.r, p[1] = col.g, p[2] = col.b;
}

void us_canvas_rect(us_canvas *c, int x0, int y0, int x1, int y1, us_rgb col)
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            put(c, x, y, col);
}

void us_canvas_disc(us_canvas *c, float cx, float cy, float r, us_rgb col)
{
    const int x0 = (int)floorf(cx - r), x1 = (int)ceilf(cx + r), y0 = (int)floorf(cy - r), y1 = (int)ceilf(cy + r);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            if (dx * dx + dy * dy <= r * r) put(c, x, y, col);
        }
}

/* A thick line as discs stamped every half pixel along it: slow per pixel, but plots are small. */
void us_canvas_line(us_canvas *c, float x0, float y0, float x1, float y1, float width, us_rgb col)
{
    const float len = hypotf(x1 - x0, y1 - y0), r = width > 1.0f ? width * 0.5f : 0.5f;
    const int steps = (int)ceilf(len * 2.0f) + 1;
    for (int i = 0; i <= steps; i++) {
        const float t = (float)i / (float)steps;
        us_canvas_disc(c, x0 + t * (x1 - x0), y0 + t * (y1 - y0), r, col);
    }
}

int us_canvas_text_height(int scale)
{
    return 9 * (scale < 1 ? 1 : scale);
}

#ifdef US_EVAL_HAVE_STB
/* stb_easy_font indexes its table by character - 32: anything outside printable ASCII becomes '?'. */
static void printable(const char *text, char *out, size_t cap)
{
    size_t i = 0;
    for (; text[i] && i + 1 < cap; i++)
        out[i] = text[i] >= 32 && text[i] < 127 ? text[i] : '?';
    out[i] = '\0';
}

int us_canvas_text_width(const char *text, int scale)
{
    char buf[256];
    printable(text, buf, sizeof buf);
    return stb_easy_font_width(buf) * (scale < 1 ? 1 : scale);
}

void us_canvas_text(us_canvas *c, int x, int y, int scale, const char *text, us_rgb col)
{
    char buf[256];
    float quads[256 * 64]; /* 16-byte vertices, 4 per quad; ~270 bytes per character */
    printable(text, buf, sizeof buf);
    if (scale < 1) scale = 1;
    const int nq = stb_easy_font_print(0.0f, 0.0f, buf, NULL, quads, (int)sizeof quads);
    for (int q = 0; q < nq; q++) {
        const float *v = quads + q * 16; /* vertex k at v + 4k: x, y, z, colour */
        float xmin = v[0], xmax = v[0], ymin = v[1], ymax = v[1];
        for (int k = 1; k < 4; k++) {
            xmin = fminf(xmin, v[4 * k]), xmax = fmaxf(xmax, v[4 * k]);
            ymin = fminf(ymin, v[4 * k + 1]), ymax = fmaxf(ymax, v[4 * k + 1]);
        }
        us_canvas_rect(c, x + (int)xmin * scale, y + (int)ymin * scale, x + (int)xmax * scale, y + (int)ymax * scale,
                       col);
    }
}

typedef struct {
    unsigned char *b;
    size_t len, cap;
    int oom;
} membuf;

static void to_mem(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->oom || size <= 0) return;
    if (m->len + (size_t)size > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + (size_t)size)
            cap *= 2;
        unsigned char *b = realloc(m->b, cap);
        if (!b) {
            m->oom = 1;
            return;
        }
        m->b = b, m->cap = cap;
    }
    memcpy(m->b + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

us_status us_canvas_png(const us_canvas *c, unsigned char **png, size_t *len, us_error *err)
{
    *png = NULL, *len = 0;
    membuf m = {0};
    const int ok = stbi_write_png_to_func(to_mem, &m, c->w, c->h, 3, c->px, c->w * 3);
    if (!ok || m.oom) {
        free(m.b);
        return us_error_set(err, US_ERR_NOMEM, "PNG encoding of a %d x %d image failed (out of memory)", c->w, c->h);
    }
    *png = m.b, *len = m.len;
    return US_OK;
}
#else
int us_canvas_text_width(const char *text, int scale)
{
    return (int)strlen(text) * 6 * (scale < 1 ? 1 : scale);
}
void us_canvas_text(us_canvas *c, int x, int y, int scale, const char *text, us_rgb col) {}
us_status us_canvas_png(const us_canvas *c, unsigned char **png, size_t *len, us_error *err)
{
    *png = NULL, *len = 0;
    return us_error_set(err, US_ERR_UNSUPPORTED, "built without stb (install libstb-dev and rebuild) for PNG plots");
}
#endif
