/* eval_plot.c: see eval_plot.h. Layout: two 460 x 400 panels side by side with a title each, grid
 * lines every 0.2, tick labels, and one legend under them. */
#include "eval_plot.h"

#include "eval_canvas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 1160, H = 600, PW = 460, PH = 400, TOP = 70, LEFT0 = 90, LEFT1 = 660 };

static us_rgb method_colour(us_method m)
{
    switch (m) {
    case US_METHOD_DENSE: return (us_rgb){30, 30, 30};
    case US_METHOD_UNISPARSE: return (us_rgb){214, 39, 40};
    case US_METHOD_XATTENTION: return (us_rgb){31, 119, 180};
    case US_METHOD_FLEXPREFILL: return (us_rgb){44, 160, 44};
    case US_METHOD_MINFERENCE: return (us_rgb){255, 127, 14};
    default: return (us_rgb){148, 103, 189};
    }
}

typedef struct {
    int left;
    const char *title;
} panel;

static float px_x(const panel *p, double v)
{
    return (float)p->left + (float)(v * PW);
}
static float px_y(double v)
{
    return (float)TOP + (float)((1.0 - v) * PH);
}

static void draw_axes(us_canvas *c, const panel *p)
{
    const us_rgb grid = {225, 225, 225}, axis = {90, 90, 90};
    char label[16];
    for (int i = 0; i <= 5; i++) {
        const double v = 0.2 * i;
        const int gx = (int)px_x(p, v), gy = (int)px_y(v);
        us_canvas_rect(c, p->left, gy, p->left + PW, gy + 1, grid);
        us_canvas_rect(c, gx, TOP, gx + 1, TOP + PH, grid);
        snprintf(label, sizeof label, "%.1f", v);
        us_canvas_text(c, p->left - 8 - us_canvas_text_width(label, 2), gy - us_canvas_text_height(2) / 2, 2, label,
                       axis);
        us_canvas_text(c, gx - us_canvas_text_width(label, 2) / 2, TOP + PH + 10, 2, label, axis);
    }
    us_canvas_rect(c, p->left, TOP + PH, p->left + PW + 1, TOP + PH + 2, axis);
    us_canvas_rect(c, p->left - 1, TOP, p->left + 1, TOP + PH + 2, axis);
    us_canvas_text(c, p->left + (PW - us_canvas_text_width(p->title, 3)) / 2, TOP - 40, 3, p->title, US_BLACK);
    const char *xl = "attention density (kept / visible pairs)";
    us_canvas_text(c, p->left + (PW - us_canvas_text_width(xl, 2)) / 2, TOP + PH + 36, 2, xl, axis);
}

static int by_length(const void *a, const void *b)
{
    const us_eval_row *x = *(const us_eval_row *const *)a, *y = *(const us_eval_row *const *)b;
    return (x->length > y->length) - (x->length < y->length);
}

us_status us_eval_plot_png(const us_eval_row *rows, int n_rows, unsigned char **png, size_t *len, us_error *err)
{
    *png = NULL, *len = 0;
    bool has_all = false;
    for (int i = 0; i < n_rows; i++)
        has_all |= !strcmp(rows[i].task, "all");
    const us_eval_row **pts = malloc((size_t)(n_rows + 1) * sizeof *pts);
    if (!pts) return us_error_set(err, US_ERR_NOMEM, "no memory");
    us_canvas c;
    us_status s = us_canvas_init(&c, W, H, US_WHITE, err);
    if (s) {
        free(pts);
        return s;
    }
    const panel panels[2] = {{LEFT0, "accuracy"}, {LEFT1, "token agreement with dense"}};
    for (int k = 0; k < 2; k++)
        draw_axes(&c, &panels[k]);

    int legend_x = LEFT0, drawn = 0;
    for (int m = 0; m < US_METHOD_COUNT; m++) {
        int n = 0;
        for (int i = 0; i < n_rows; i++)
            if ((int)rows[i].method == m && (!has_all || !strcmp(rows[i].task, "all"))) pts[n++] = &rows[i];
        if (n == 0) continue;
        qsort(pts, (size_t)n, sizeof *pts, by_length);
        const us_rgb col = method_colour((us_method)m);
        for (int k = 0; k < 2; k++) {
            const panel *p = &panels[k];
            for (int i = 0; i < n; i++) {
                const double y = k == 0 ? pts[i]->accuracy : pts[i]->agreement;
                const double y0 = i > 0 ? (k == 0 ? pts[i - 1]->accuracy : pts[i - 1]->agreement) : NAN;
                if (!isfinite(y) || !isfinite(pts[i]->density)) continue;
                if (i > 0 && isfinite(y0) && isfinite(pts[i - 1]->density))
                    us_canvas_line(&c, px_x(p, pts[i - 1]->density), px_y(y0), px_x(p, pts[i]->density), px_y(y), 2.0f,
                                   col);
                /* later methods smaller, so that methods on one spot (all at density 1) stay visible */
                us_canvas_disc(&c, px_x(p, pts[i]->density), px_y(y), 9.0f - 1.2f * (float)drawn, col);
                char label[24];
                snprintf(label, sizeof label, "%lld", (long long)pts[i]->length);
                us_canvas_text(&c, (int)px_x(p, pts[i]->density) + 7, (int)px_y(y) - 12, 1, label, col);
            }
        }
        /* legend entry under the panels */
        const char *name = us_method_name((us_method)m);
        us_canvas_rect(&c, legend_x, H - 42, legend_x + 22, H - 30, col);
        us_canvas_text(&c, legend_x + 30, H - 45, 2, name, US_BLACK);
        legend_x += 30 + us_canvas_text_width(name, 2) + 40;
        drawn++;
    }
    const char *note = has_all ? "points: every task pooled, one per length (labelled in tokens)"
                               : "points: one per length (labelled in tokens)";
    us_canvas_text(&c, W - 20 - us_canvas_text_width(note, 1), H - 16, 1, note, (us_rgb){110, 110, 110});
    s = us_canvas_png(&c, png, len, err);
    us_canvas_free(&c);
    free(pts);
    return s;
}
