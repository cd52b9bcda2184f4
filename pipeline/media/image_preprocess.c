/* image_preprocess.c: see image_preprocess.h.
 *
 * The resize follows Pillow 13.0's src/libImaging/Resample.c (precompute_coeffs,
 * normalize_coeffs_8bpc, the 8bpc horizontal and vertical passes, ImagingResampleInner) operation for
 * operation, because the Hugging Face processor hands the image to PIL: the coefficients are computed
 * in double with the same expressions and truncations, turned into 22-bit integers, and each pass
 * accumulates integers from 2^21 (one half) and keeps bits 22 and up, clamped to 0..255. Reordering
 * any of these floating-point operations changes some pixels by one level. */
#include "image_preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22 /* Pillow's (32 - 8 - 2) */
#define MAX_SIDE (1 << 16)

typedef struct {
    int ksize;      /* coefficients per output sample */
    int *bounds;    /* [out, 2]: first input index, count */
    int32_t *k;     /* [out, ksize]: fixed-point weights */
} coeffs;

static double bilinear_filter(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs for the box (0, in_size) and BILINEAR (support 1), then
 * normalize_coeffs_8bpc. Returns 0 when out of memory. */
static int coeffs_make(int in_size, int out_size, coeffs *c)
{
    double scale = (double)((float)in_size - 0.0f) / out_size; /* Pillow's box corners are floats */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out_size * (size_t)ksize * sizeof *c->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!c->bounds || !c->k || !w) {
        free(w);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* truncation toward zero, as in Pillow */
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x = 0;
        for (; x < xmax; x++) {
            w[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) w[x] /= ww;
        for (; x < ksize; x++) w[x] = 0.0;
        int32_t *k = c->k + (size_t)xx * ksize;
        for (x = 0; x < ksize; x++)
            k[x] = w[x] < 0 ? (int32_t)(-0.5 + w[x] * (1 << PRECISION_BITS))
                            : (int32_t)(0.5 + w[x] * (1 << PRECISION_BITS));
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return 1;
}

static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

static uint8_t clip8(int v)
{
    v >>= PRECISION_BITS; /* arithmetic shift: floor, as Pillow's lookup index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [row0, row0 + rows) of src [*, w, 3] resampled horizontally into dst [rows, ow, 3]. */
static void pass_horizontal(const uint8_t *src, int w, int row0, int rows, uint8_t *dst, int ow, const coeffs *c)
{
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(row0 + yy) * w * 3;
        uint8_t *out = dst + (size_t)yy * ow * 3;
        for (int xx = 0; xx < ow; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < n; x++) {
                const uint8_t *p = in + (size_t)(x + xmin) * 3;
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            out[3 * xx] = clip8(s0);
            out[3 * xx + 1] = clip8(s1);
            out[3 * xx + 2] = clip8(s2);
        }
    }
}

/* src [*, w, 3] resampled vertically into dst [oh, w, 3]; c's bounds are rows of src. */
static void pass_vertical(const uint8_t *src, int w, uint8_t *dst, int oh, const coeffs *c)
{
    for (int yy = 0; yy < oh; yy++) {
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        uint8_t *out = dst + (size_t)yy * w * 3;
        for (int i = 0; i < w * 3; i++) {
            int s = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) s += src[(size_t)(y + ymin) * w * 3 + i] * k[y];
            out[i] = clip8(s);
        }
    }
}

us_status us_image_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh, us_error *err)
{
    if (!src || !dst) return us_error_set(err, US_ERR_INVALID, "image resize: NULL image");
    if (w < 1 || h < 1 || ow < 1 || oh < 1 || w > MAX_SIDE || h > MAX_SIDE || ow > MAX_SIDE || oh > MAX_SIDE)
        return us_error_set(err, US_ERR_INVALID, "image resize: %dx%d -> %dx%d: sides must be 1..%d", w, h, ow, oh,
                            MAX_SIDE);
    if (ow == w && oh == h) {
        memcpy(dst, src, (size_t)w * h * 3);
        return US_OK;
    }
    us_status s = US_OK;
    coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    if (!coeffs_make(h, oh, &cv)) goto nomem;
    if (ow == w) { /* vertical only */
        pass_vertical(src, w, dst, oh, &cv);
        goto done;
    }
    if (!coeffs_make(w, ow, &ch)) goto nomem;
    if (oh == h) { /* horizontal only */
        pass_horizontal(src, w, 0, h, dst, ow, &ch);
        goto done;
    }
    /* Pillow 13 runs the vertical pass first when the height loses more than twice as many pixels
     * as the width (a smaller intermediate); the intermediate is rounded to uint8, so the order shows. */
    if (h - oh > 0 && h - oh > (w - ow) * 2) {
        if (!(tmp = malloc((size_t)oh * w * 3))) goto nomem;
        pass_vertical(src, w, tmp, oh, &cv);
        pass_horizontal(tmp, w, 0, oh, dst, ow, &ch);
        goto done;
    }
    /* Horizontal first: only the source rows the vertical pass reads go through it. */
    int first = cv.bounds[0];
    int last = cv.bounds[2 * oh - 2] + cv.bounds[2 * oh - 1];
    for (int i = 0; i < oh; i++) cv.bounds[2 * i] -= first;
    if (!(tmp = malloc((size_t)(last - first) * ow * 3))) goto nomem;
    pass_horizontal(src, w, first, last - first, tmp, ow, &ch);
    pass_vertical(tmp, ow, dst, oh, &cv);
    goto done;
nomem:
    s = us_error_set(err, US_ERR_NOMEM, "image resize: out of memory for %dx%d -> %dx%d", w, h, ow, oh);
done:
    free(tmp);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return s;
}

us_status us_image_preprocess(const uint8_t *src, int w, int h, int size, float *out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "image preprocess: NULL output");
    if (size < 1 || size > MAX_SIDE)
        return us_error_set(err, US_ERR_INVALID, "image preprocess: size %d: must be 1..%d", size, MAX_SIDE);
    size_t plane = (size_t)size * size;
    uint8_t *rgb = malloc(plane * 3);
    if (!rgb) return us_error_set(err, US_ERR_NOMEM, "image preprocess: out of memory for %dx%d", size, size);
    us_status s = us_image_resize_bilinear(src, w, h, rgb, size, size, err);
    if (s == US_OK) {
        /* transformers: rescale is float64(x) * (1/255) cast to float32; normalize is float32. */
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) {
                float x = (float)((double)rgb[3 * i + c] * (1.0 / 255.0));
                out[(size_t)c * plane + i] = (x - 0.5f) / 0.5f;
            }
    }
    free(rgb);
    return s;
}
