/* image_load.c: see image_load.h. stb_image comes from Debian's libstb (pkg-config stb), so no
 * implementation is compiled here. Every image is decoded to RGBA and flattened onto white with
 * Pillow's integer alpha_composite (src/libImaging/AlphaComposite.c, 7 extra bits, divisions by 255
 * rounded), which is what transformers' convert_to_rgb does; an opaque pixel comes out unchanged. */
#include "image_load.h"

#include <errno.h>
#include <limits.h>
#include <stb_image.h>
#include <stdio.h>
#include <stdlib.h>
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

/* stb_image 2.27 (Debian 12's libstb) converts a 16-bit PNM to the requested channel count with its
 * 8-bit routine, then reads that buffer as 16-bit samples: a heap over-read of up to the image's size
 * (FUZZING.md, finding F1). Such a file is decoded with its own channel count (no conversion
 * inside stb_image) and widened to RGBA here. head: the file's first bytes. */
static int is_16bit_pnm(const uint8_t *head, size_t n, int is_16_bit)
{
    return is_16_bit && n >= 2 && head[0] == 'P' && (head[1] == '5' || head[1] == '6');
}

/* The formats handed to stb_image, by their signature: PNG, JPEG, GIF, BMP and binary PNM (P5, P6).
 * stb_image would also try TGA (no signature: any bytes may pass its sniffing), PSD, HDR and PIC; in
 * Debian's stb_image 2.27 these decoders are the least tested and a vision prompt never needs them,
 * so they are refused (US_ERR_FORMAT, as any unknown format) rather than fuzzed in production. */
static const char *image_format(const uint8_t *b, size_t n)
{
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return "GIF";
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return "PNM";
    return NULL;
}

/* stb_image 2.27 reads a PNM header's numbers into an int without an overflow check (undefined
 * behaviour from the tenth digit on; FUZZING.md, finding F4). Returns 0 when width, height or
 * maxval has more than 9 digits, skipping whitespace and comments as stb_image does. */
static int pnm_header_ok(const uint8_t *b, size_t n)
{
    size_t p = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (p < n && strchr(" \t\n\v\f\r", b[p]) && b[p]) p++;
            if (p >= n || b[p] != '#') break;
            while (p < n && b[p] != '\n' && b[p] != '\r') p++;
        }
        int digits = 0;
        while (p < n && b[p] >= '0' && b[p] <= '9') p++, digits++;
        if (digits > 9) return 0;
    }
    return 1;
}

/* stb_image 2.27 grows its IDAT buffer to a chunk's stated length before reading the chunk, so a
 * 464-byte PNG claiming a 2 GB IDAT allocates 2 GB (FUZZING.md, finding F6). Returns 0 when a chunk
 * claims more bytes than the file has left. */
static int png_chunks_ok(const uint8_t *b, size_t n)
{
    if (n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return 1;
    for (size_t p = 8; p + 8 <= n;) {
        size_t len = (size_t)b[p] << 24 | (size_t)b[p + 1] << 16 | (size_t)b[p + 2] << 8 | b[p + 3];
        if (len > n - (p + 8)) return 0;
        if (memcmp(b + p + 4, "IEND", 4) == 0) break;
        p += 12 + len;
    }
    return 1;
}

/* stb_image 2.27 builds a JPEG Huffman table from the 16 code-length counts of a DHT segment without
 * checking that they sum to at most 256, the size of its tables: larger sums write past them
 * (FUZZING.md, finding F2). Walks the markers (those between scans of a progressive JPEG too)
 * and returns 0 when a DHT table claims more than 256 codes. Not a validator: whatever else is wrong
 * is left to stb_image. */
static int jpeg_tables_ok(const uint8_t *b, size_t n)
{
    if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) return 1; /* not a JPEG */
    size_t p = 2;
    while (p + 1 < n) {
        if (b[p] != 0xFF) { /* entropy-coded data after SOS: on to the next marker */
            p++;
            continue;
        }
        uint8_t m = b[p + 1];
        if (m == 0xFF || m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { /* fill, stuffing, RSTn, TEM */
            p++;
            continue;
        }
        if (m == 0xD9) return 1; /* EOI */
        if (p + 4 > n) return 1;
        size_t len = (size_t)b[p + 2] << 8 | b[p + 3], end = p + 2 + len;
        if (len < 2) return 1; /* stb_image rejects it */
        if (m == 0xC4) { /* DHT: tables (class/id, 16 counts, values) read as stb_image reads them: on */
            long left = (long)len - 2; /* while the length says more is left, even past a table's end */
            size_t q = p + 4;
            while (left > 0) {
                if (q >= n || b[q] >> 4 > 1 || (b[q] & 15) > 3) return 1; /* stb_image rejects it */
                unsigned codes = 0;
                for (size_t i = q + 1; i <= q + 16; i++) codes += i < n ? b[i] : 0;
                if (codes > 256) return 0;
                q += 17 + codes;
                left -= 17 + (long)codes;
            }
            if (left != 0) return 1; /* stb_image rejects it */
        }
        p = end;
    }
    return 1;
}

/* Pixels an image may have: at most MAX_PIXELS (8192 x 8192; the vision tower sees 896 x 896), and at
 * most PIXELS_PER_BYTE per byte of the file, above what any format stb_image reads can pack (deflate
 * expands at most 1032:1 and a 1-bit PNG holds 8 pixels a byte; RLE, LZW and Huffman coding pack
 * less). stb_image allocates and fills the whole image its header claims before it finds the data
 * missing (FUZZING.md, finding F3: 26 bytes of TGA claiming 65531 x 8192 pixels ran past the 10 s timeout). */
#define MAX_PIXELS (1ull << 26)
#define PIXELS_PER_BYTE 8256ull

/* px: [w * h * channels] from stb_image (channels 1..4) -> a new [w * h * 4] RGBA buffer; px is freed.
 * Grey is replicated and a missing alpha is 255, as stb_image's own conversion does. */
static uint8_t *widen_to_rgba(uint8_t *px, int w, int h, int channels)
{
    if (!px || channels < 1 || channels > 4) {
        stbi_image_free(px);
        return NULL;
    }
    size_t n = (size_t)w * (size_t)h;
    uint8_t *out = malloc(n * 4); /* freed by stbi_image_free, which is free() */
    for (size_t i = 0; out && i < n; i++) {
        const uint8_t *p = px + i * (size_t)channels;
        uint8_t *q = out + 4 * i;
        q[0] = p[0];
        q[1] = channels >= 3 ? p[1] : p[0];
        q[2] = channels >= 3 ? p[2] : p[0];
        q[3] = channels == 2 ? p[1] : channels == 4 ? p[3] : 255;
    }
    stbi_image_free(px);
    return out;
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
    if (S_ISREG(sb.st_mode) && (unsigned long long)sb.st_size > INT_MAX)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: %lld bytes: too large for stb_image", path,
                            (long long)sb.st_size);
    /* The whole file in memory, so that the checks of us_image_load_memory see its bytes. */
    FILE *f = fopen(path, "rb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 1 << 16, size = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size += fread(buf + size, 1, cap - size, f);
        if (size < cap || cap > INT_MAX) break; /* the end (or a read error, checked below) */
        uint8_t *more = realloc(buf, 2 * cap);
        if (!more) free(buf);
        buf = more, cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    us_status s;
    if (!buf) s = us_error_set(err, US_ERR_NOMEM, "%s: out of memory reading the file", path);
    else if (bad) s = us_error_set(err, US_ERR_IO, "%s: read error", path);
    else s = us_image_load_memory(buf, size, path, out, err);
    free(buf);
    return s;
}

us_status us_image_load_memory(const void *data, size_t size, const char *name, us_image *out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_image_load_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "(memory)";
    if (!data || size == 0) return us_error_set(err, US_ERR_FORMAT, "%s: empty buffer, not an image", name);
    if (size > INT_MAX)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: %zu bytes: too large for stb_image", name, size);
    const char *format = image_format(data, size);
    if (!format)
        return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: not PNG, JPEG, GIF, BMP or PNM (P5/P6)",
                            name);
    if (!strcmp(format, "PNM") && !pnm_header_ok(data, size))
        return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: corrupt PNM header (a number of more "
                            "than 9 digits)", name);
    if (!png_chunks_ok(data, size))
        return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: truncated or corrupt PNG (a chunk longer "
                            "than the file)", name);
    if (!jpeg_tables_ok(data, size))
        return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: corrupt JPEG (a Huffman table of more "
                            "than 256 codes)", name);
    int iw = 0, ih = 0, ic = 0;
    if (stbi_info_from_memory(data, (int)size, &iw, &ih, &ic)) { /* else stbi_load says why */
        unsigned long long px = (unsigned long long)iw * (unsigned long long)ih;
        if (px > PIXELS_PER_BYTE * size)
            return us_error_set(err, US_ERR_FORMAT, "%s: not a readable image: its header claims %d x %d pixels, "
                                "more than %zu bytes can hold (corrupt or truncated)", name, iw, ih, size);
        if (px > MAX_PIXELS)
            return us_error_set(err, US_ERR_UNSUPPORTED, "%s: %d x %d pixels: larger than the %llu-pixel limit",
                                name, iw, ih, MAX_PIXELS);
    }
    int pnm16 = is_16bit_pnm(data, size, stbi_is_16_bit_from_memory(data, (int)size));
    int w = 0, h = 0, channels = 0;
    uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &channels, pnm16 ? 0 : 4);
    if (pnm16) px = widen_to_rgba(px, w, h, channels);
    return decoded(px, w, h, name, out, err);
}

void us_image_free(us_image *img)
{
    if (!img) return;
    stbi_image_free(img->rgb);
    memset(img, 0, sizeof *img);
}
