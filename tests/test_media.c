/* test_media.c: the media front end (pipeline/media/).
 *
 * (a) Images: us_image_resize_bilinear and us_image_preprocess against Hugging Face's Gemma 3 image
 *     processor (PIL backend) on the images in assets/media/, which scripts/make-media-fixtures.py
 *     wrote with its outputs: the resize must be byte-identical to PIL's and the floats identical
 *     (asserted to 1e-6). The JPEG case runs on PIL's decode (stored with it) since stb_image's JPEG
 *     decoder differs from libjpeg's by a few levels; that distance is measured and bounded apart.
 * (b) Image errors: missing, empty, garbage and truncated files name the file.
 * (c) Videos made here by the ffmpeg CLI (H.264 with B-frames in MP4 at 29.97 fps, MPEG-4 in AVI, VP9
 *     in WebM, MJPEG (full range) in Matroska, H.264 in MPEG-TS starting at 1.4 s, and Matroska
 *     written to a pipe, so with neither duration nor index): the reader's facts against ffprobe, every
 *     sampled frame's timestamp against ffprobe's frame list (it must be the first frame at or after
 *     its target), and every sampled frame's pixels against the frame with that timestamp in the
 *     ffmpeg CLI's own full decode to rgb24 through the same swscale flags: identical bytes. Keyframe
 *     plans: each frame is a keyframe of its interval (the first one, where the container indexes
 *     them all) or the exact rule's frame for the interval's centre, with the same pixel check. And
 *     7 frames of a 40 s clip must decode at most a GOP each: the reader seeks.
 * (d) Video errors: missing, empty, random bytes, truncated (three ways), audio-only, a codec with no
 *     decoder, bad counts and rates.
 * Video tests skip, saying so, when the ffmpeg or ffprobe CLI is absent, and are compiled out when the
 * library was built without FFmpeg. */
#include "image_load.h"
#include "image_preprocess.h"
#include "safetensors.h"
#ifdef US_HAVE_FFMPEG
#include "video_reader.h"
#endif

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/us_media_test_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    DIR *d = opendir(g_dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_dir);
}

TestSuite(image, .init = setup, .fini = teardown);
TestSuite(video, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(video_bad, .init = setup, .fini = teardown, .timeout = 60);

/* <assets>/<rel>: from $US_ASSETS (ctest sets it), else next to this source file. */
static void asset_path(char *out, size_t cap, const char *rel)
{
    const char *env = getenv("US_ASSETS");
    if (env && env[0]) {
        snprintf(out, cap, "%s/%s", env, rel);
        return;
    }
    const char *src = __FILE__;
    const char *tail = strstr(src, "tests/test_media.c");
    int root = tail ? (int)(tail - src) : 0;
    snprintf(out, cap, "%.*sassets/%s", root, src, rel);
}

static void tmp_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Deterministic noise (an LCG), so a failure reproduces. */
static void fill_random(uint8_t *b, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
}

/* ---- (a) images against the Hugging Face processor ------------------------------------------------ */

/* The fixture's cases, "<image>@<S>", and each one's image: from the file (PNG, lossless, so stb_image
 * and PIL agree) or, for the JPEG, PIL's own decode. */
static void check_case(const us_safetensors *st, const us_st_tensor *want)
{
    char image[128], path[1024], key[300];
    int size = 0;
    const char *at = strrchr(want->name, '@');
    cr_assert_not_null(at, "%s: not a case name", want->name);
    snprintf(image, sizeof image, "%.*s", (int)(at - want->name), want->name);
    size = atoi(at + 1);
    cr_assert(size > 0 && want->ndim == 3 && want->shape[0] == 3 && want->shape[1] == size && want->shape[2] == size,
              "%s: unexpected shape", want->name);

    us_error err;
    us_image img = {0};
    uint8_t *pixels;
    int w, h;
    snprintf(key, sizeof key, "%s.pixels", image);
    const us_st_tensor *pil = us_safetensors_find(st, key);
    if (pil) { /* lossy: use the decode the processor saw */
        h = (int)pil->shape[0], w = (int)pil->shape[1];
        pixels = (uint8_t *)pil->data;
    } else {
        snprintf(key, sizeof key, "media/%s", image);
        asset_path(path, sizeof path, key);
        cr_assert_eq(us_image_load(path, &img, &err), US_OK, "%s", err.msg);
        w = img.width, h = img.height, pixels = img.rgb;
    }

    uint8_t *resized = malloc((size_t)size * size * 3);
    float *out = malloc((size_t)3 * size * size * sizeof *out);
    cr_assert(resized && out);
    cr_assert_eq(us_image_resize_bilinear(pixels, w, h, resized, size, size, &err), US_OK, "%s", err.msg);
    snprintf(key, sizeof key, "%s.resized", want->name);
    const us_st_tensor *ref = us_safetensors_find(st, key);
    cr_assert_not_null(ref, "fixture lacks %s", key);
    int differ = 0, maxd = 0;
    for (size_t i = 0; i < (size_t)size * size * 3; i++) {
        int d = abs((int)resized[i] - (int)((const uint8_t *)ref->data)[i]);
        differ += d != 0;
        if (d > maxd) maxd = d;
    }
    cr_expect_eq(differ, 0, "%s: %dx%d -> %d: %d resized bytes differ from PIL's (max %d)", want->name, w, h, size,
                 differ, maxd);

    cr_assert_eq(us_image_preprocess(pixels, w, h, size, out, &err), US_OK, "%s", err.msg);
    const float *hf = want->data;
    double maxf = 0;
    for (size_t i = 0; i < (size_t)3 * size * size; i++) maxf = fmax(maxf, fabs((double)out[i] - hf[i]));
    cr_log_info("%s: %dx%d -> %dx%d, max |ours - transformers| = %.3g, resized bytes differing %d", want->name, w,
                h, size, size, maxf, differ);
    cr_expect(maxf <= 1e-6, "%s: max |ours - transformers| = %g", want->name, maxf);
    free(resized);
    free(out);
    us_image_free(&img);
}

Test(image, preprocess_matches_transformers)
{
    char path[1024];
    us_error err;
    us_safetensors *st = NULL;
    asset_path(path, sizeof path, "media/preprocess.safetensors");
    cr_assert_eq(us_safetensors_open(path, &st, &err), US_OK, "%s (run scripts/make-media-fixtures.py)", err.msg);
    int cases = 0;
    for (int i = 0; i < us_safetensors_count(st); i++) {
        const us_st_tensor *t = us_safetensors_at(st, i);
        if (strchr(t->name, '@') && !strstr(t->name, ".resized")) {
            check_case(st, t);
            cases++;
        }
    }
    cr_assert_geq(cases, 8, "only %d cases in %s", cases, path);
    us_safetensors_close(&st);
}

/* stb_image and libjpeg are both valid JPEG decoders and differ slightly (IDCT, chroma upsampling). */
Test(image, jpeg_decode_close_to_pil)
{
    char path[1024];
    us_error err;
    us_safetensors *st = NULL;
    us_image img = {0};
    asset_path(path, sizeof path, "media/preprocess.safetensors");
    cr_assert_eq(us_safetensors_open(path, &st, &err), US_OK, "%s", err.msg);
    const us_st_tensor *pil = us_safetensors_find(st, "photo.jpg.pixels");
    cr_assert_not_null(pil);
    asset_path(path, sizeof path, "media/photo.jpg");
    cr_assert_eq(us_image_load(path, &img, &err), US_OK, "%s", err.msg);
    cr_assert_eq(img.height, pil->shape[0]);
    cr_assert_eq(img.width, pil->shape[1]);
    size_t n = (size_t)img.width * img.height * 3;
    int maxd = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)img.rgb[i] - (int)((const uint8_t *)pil->data)[i]);
        sum += d;
        if (d > maxd) maxd = d;
    }
    cr_log_info("photo.jpg: stb_image vs PIL: max %d levels, mean %.3f", maxd, sum / (double)n);
    cr_expect(maxd <= 16 && sum / (double)n <= 1.5, "stb_image vs PIL: max %d, mean %.3f", maxd, sum / (double)n);
    us_image_free(&img);
    us_safetensors_close(&st);
}

Test(image, grey_and_alpha_become_rgb)
{
    char path[1024];
    us_error err;
    us_image img = {0};
    asset_path(path, sizeof path, "media/grey-20x19.png");
    cr_assert_eq(us_image_load(path, &img, &err), US_OK, "%s", err.msg);
    cr_assert(img.width == 20 && img.height == 19);
    for (int i = 0; i < 20 * 19; i++)
        cr_assert(img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2]);
    us_image_free(&img);
    cr_assert_null(img.rgb);
    asset_path(path, sizeof path, "media/alpha-30x17.png");
    cr_assert_eq(us_image_load(path, &img, &err), US_OK, "%s", err.msg);
    cr_assert(img.width == 30 && img.height == 17);
    us_image_free(&img);
}

Test(image, same_size_is_a_copy_and_arguments_are_checked)
{
    uint8_t src[2 * 3 * 3], dst[2 * 3 * 3];
    us_error err;
    fill_random(src, sizeof src, 5);
    cr_assert_eq(us_image_resize_bilinear(src, 3, 2, dst, 3, 2, &err), US_OK);
    cr_assert_eq(memcmp(src, dst, sizeof src), 0);
    cr_assert_eq(us_image_resize_bilinear(src, 0, 2, dst, 3, 2, &err), US_ERR_INVALID);
    cr_assert_eq(us_image_preprocess(src, 3, 2, 0, (float *)dst, &err), US_ERR_INVALID);
    /* 1 x 1 to 4 x 4: every output pixel is the input pixel */
    uint8_t one[3] = {10, 128, 255}, four[4 * 4 * 3];
    cr_assert_eq(us_image_resize_bilinear(one, 1, 1, four, 4, 4, &err), US_OK, "%s", err.msg);
    for (int i = 0; i < 16; i++) cr_assert_eq(memcmp(four + 3 * i, one, 3), 0);
}

/* ---- (b) image errors ------------------------------------------------------------------------------ */

static void expect_image_error(const char *path, us_status want)
{
    us_image img = {0};
    us_error err = {0};
    us_status s = us_image_load(path, &img, &err);
    cr_expect_eq(s, want, "%s: status %d (%s), want %d", path, s, err.msg, want);
    cr_expect_not_null(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    cr_expect_null(img.rgb);
    cr_log_info("%s", err.msg);
}

Test(image, errors_name_the_file)
{
    char path[600], src[1024];
    tmp_path(path, sizeof path, "missing.png");
    expect_image_error(path, US_ERR_IO);
    tmp_path(path, sizeof path, "empty.png");
    write_bytes(path, "", 0);
    expect_image_error(path, US_ERR_FORMAT);
    uint8_t junk[4096];
    fill_random(junk, sizeof junk, 7);
    tmp_path(path, sizeof path, "junk.jpg");
    write_bytes(path, junk, sizeof junk);
    expect_image_error(path, US_ERR_FORMAT);
    size_t n;
    asset_path(src, sizeof src, "media/odd-101x67.png");
    uint8_t *png = read_bytes(src, &n);
    tmp_path(path, sizeof path, "cut.png");
    write_bytes(path, png, n / 2);
    expect_image_error(path, US_ERR_FORMAT);
    free(png);
    us_image img;
    us_error err;
    cr_expect_eq(us_image_load_memory(junk, sizeof junk, "junk in memory", &img, &err), US_ERR_FORMAT);
    cr_expect_not_null(strstr(err.msg, "junk in memory"), "%s", err.msg);
}

#ifdef US_HAVE_FFMPEG

/* ---- (c) videos against the ffmpeg CLI ------------------------------------------------------------- */

static void need_ffmpeg(void)
{
    if (system("command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1") != 0)
        cr_skip("the ffmpeg and ffprobe command-line tools are not installed (scripts/install-deps.sh): "
                "the video tests need them to make and check their inputs");
}

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

/* A testsrc2 clip: `ffmpeg ... -i testsrc2=<src> <args> <path>`. */
static void make_video(char *path, size_t cap, const char *name, const char *src, const char *args)
{
    tmp_path(path, cap, name);
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=%s %s %s", src, args, path);
}

/* The CLI's view of a file: every frame's timestamp and pixels, in presentation order. The pixels come
 * through swscale with the reader's flags, from the same libswscale, after a decode from the start. */
typedef struct {
    double *pts;
    int *key; /* the decoder's keyframe flag */
    int n, w, h;
    uint8_t *rgb; /* [n, h, w, 3] */
    double fps;
} reference;

#define REF_SWS_FLAGS "bicubic+full_chroma_int"

static reference ref_load(const char *path)
{
    reference r = {0};
    char cmd[1400], line[256];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -show_entries stream=width,height,avg_frame_rate -of csv=p=0 %s",
             path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    int num = 0, den = 1;
    cr_assert(fgets(line, sizeof line, p) && sscanf(line, "%d,%d,%d/%d", &r.w, &r.h, &num, &den) >= 2,
              "ffprobe: %s", cmd);
    pclose(p);
    r.fps = den > 0 ? (double)num / den : 0;
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -show_entries frame=key_frame,best_effort_timestamp_time "
             "-of csv=p=0 %s",
             path);
    cr_assert_not_null(p = popen(cmd, "r"));
    int cap = 0;
    while (fgets(line, sizeof line, p)) {
        double t;
        int key;
        if (sscanf(line, "%d,%lf", &key, &t) != 2) continue; /* blank lines of side data */
        if (r.n == cap) {
            cap = cap * 2 + 64;
            r.pts = realloc(r.pts, (size_t)cap * sizeof *r.pts);
            r.key = realloc(r.key, (size_t)cap * sizeof *r.key);
            cr_assert(r.pts && r.key);
        }
        r.key[r.n] = key;
        r.pts[r.n++] = t;
    }
    pclose(p);
    cr_assert_gt(r.n, 0, "ffprobe found no frames in %s", path);
    char raw[600];
    tmp_path(raw, sizeof raw, "reference.rgb");
    sh("ffmpeg -nostdin -v error -y -i %s -map 0:v:0 -vf scale=flags=" REF_SWS_FLAGS ",format=rgb24 "
       "-fps_mode passthrough -f rawvideo %s",
       path, raw);
    size_t n;
    r.rgb = read_bytes(raw, &n);
    cr_assert_eq(n, (size_t)r.n * r.w * r.h * 3, "%s: the CLI decoded %zu bytes for %d frames of %dx%d", path, n, r.n,
                 r.w, r.h);
    unlink(raw);
    return r;
}

static void ref_free(reference *r)
{
    free(r->pts);
    free(r->key);
    free(r->rgb);
}

#define TS_EPS 2e-6 /* ffprobe prints microseconds */

/* Whether frame i is a keyframe with a timestamp in [a, b). */
static int key_in(const reference *r, int i, double a, double b)
{
    return r->key[i] && r->pts[i] >= a - TS_EPS && r->pts[i] < b - TS_EPS;
}

/* The frame the rule picks must be the one the reader gave, with the same pixels. kf_n > 0: a keyframe
 * plan of kf_n intervals, where a keyframe inside the frame's interval may answer instead; strict: the
 * container indexes every keyframe, so it must be the interval's first keyframe whenever there is one. */
static int check_frame(const reference *r, const us_video_info *in, const us_video_frame *f, int64_t kf_n, int strict,
                       const char *what)
{
    int j = -1;
    for (int i = 0; i < r->n; i++)
        if (fabs(r->pts[i] - f->pts_s) < TS_EPS) j = i;
    cr_assert_geq(j, 0, "%s #%lld: pts %.6f is no frame of the file", what, (long long)f->index, f->pts_s);
    double a = 0, b = 0;
    if (kf_n > 0) {
        a = in->start_s + (double)f->index * in->duration_s / (double)kf_n;
        b = in->start_s + (double)(f->index + 1) * in->duration_s / (double)kf_n;
        int first = -1;
        for (int i = 0; i < r->n && first < 0; i++)
            if (key_in(r, i, a, b)) first = i;
        if (strict)
            cr_assert_eq(j, first >= 0 ? first : j, "%s #%lld: [%.6f, %.6f) has keyframe %.6f, but %.6f came", what,
                         (long long)f->index, a, b, first >= 0 ? r->pts[first] : 0.0, r->pts[j]);
    }
    int by_key = kf_n > 0 && key_in(r, j, a, b);
    if (by_key) {
        /* a keyframe of its interval */
    } else if (r->pts[j] >= f->target_s - TS_EPS) {
        cr_assert(j == 0 || r->pts[j - 1] < f->target_s - TS_EPS,
                  "%s #%lld: target %.6f answered by %.6f, but frame %.6f comes first", what, (long long)f->index,
                  f->target_s, r->pts[j], r->pts[j - 1]);
    } else {
        cr_assert_eq(j, r->n - 1, "%s #%lld: frame %.6f is before target %.6f", what, (long long)f->index, r->pts[j],
                     f->target_s);
        cr_assert_leq(f->target_s - r->pts[j], 1.0 / (r->fps > 0 ? r->fps : 1) + TS_EPS,
                      "%s #%lld: target %.6f past the end", what, (long long)f->index, f->target_s);
    }
    cr_assert_lt(fabs(f->time_s - (f->pts_s - in->start_s)), 1e-9);
    cr_assert(f->width == r->w && f->height == r->h);
    const uint8_t *want = r->rgb + (size_t)j * r->w * r->h * 3;
    size_t n = (size_t)r->w * r->h * 3, differ = 0;
    int maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)f->rgb[i] - (int)want[i]);
        differ += d != 0;
        if (d > maxd) maxd = d;
    }
    cr_assert_eq(differ, 0, "%s #%lld (pts %.6f): %zu of %zu bytes differ from the ffmpeg CLI's frame %d (max %d)",
                 what, (long long)f->index, f->pts_s, differ, n, j, maxd);
    return by_key;
}

/* Runs a plan to its end, checking each frame; returns the count delivered. */
static int64_t run_plan(us_video *v, const reference *r, int64_t kf_n, int strict, const char *what)
{
    us_error err;
    us_video_frame f;
    int64_t n = 0, by_key = 0;
    int got;
    while ((got = us_video_next_frame(v, &f, &err)) == 1) {
        cr_assert_eq(f.index, n);
        by_key += check_frame(r, us_video_get_info(v), &f, kf_n, strict, what);
        n++;
    }
    if (kf_n > 0) {
        cr_log_info("%s: %lld of %lld frames are keyframes of their intervals", what, (long long)by_key, (long long)n);
        if (strict) cr_expect_gt(by_key, 0, "%s: no keyframe answered", what);
    }
    cr_assert_eq(got, 0, "%s: %s", what, err.msg);
    cr_assert_eq(us_video_next_frame(v, &f, &err), 0, "a finished plan stays finished");
    return n;
}

/* Every check on one file: its facts, count plans (sparse, and denser than the video), rate plans,
 * keyframe plans (strict_kf: the container indexes every keyframe at its presentation time). */
static void check_video(const char *path, const char *codec, int threads, int strict_kf)
{
    reference r = ref_load(path);
    us_video *v = NULL;
    us_error err;
    cr_assert_eq(us_video_open(path, threads, &v, &err), US_OK, "%s", err.msg);
    const us_video_info *in = us_video_get_info(v);
    double frame = 1.0 / r.fps;
    cr_log_info("%s: %s in %s, %dx%d, %.3f fps, start %.3f s, %.3f s (%s), %lld frames; ffprobe: %d frames %.3f..%.3f",
                path, in->codec, in->container, in->width, in->height, in->fps, in->start_s, in->duration_s,
                in->duration_source, (long long)in->frame_count, r.n, r.pts[0], r.pts[r.n - 1]);
    cr_expect_str_eq(in->codec, codec);
    cr_expect(in->width == r.w && in->height == r.h);
    cr_expect_lt(fabs(in->fps - r.fps), 1e-3);
    cr_expect_lt(fabs(in->start_s - r.pts[0]), 1e-3, "start %.6f vs first frame %.6f", in->start_s, r.pts[0]);
    double span = r.pts[r.n - 1] + frame - r.pts[0];
    cr_expect_lt(fabs(in->duration_s - span), frame + 1e-3, "duration %.6f vs frames' span %.6f", in->duration_s, span);
    cr_expect(in->frame_count == 0 || in->frame_count == r.n, "frame_count %lld vs %d", (long long)in->frame_count,
              r.n);

    const int counts[] = {7, 1, 2 * r.n + 3};
    for (int c = 0; c < 3; c++) {
        char what[600];
        snprintf(what, sizeof what, "%s, %d frames", path, counts[c]);
        cr_assert_eq(us_video_sample_by_count(v, counts[c], &err), US_OK, "%s", err.msg);
        cr_assert_eq(us_video_sample_total(v), counts[c]);
        cr_assert_eq(run_plan(v, &r, 0, 0, what), counts[c]);
    }
    /* targets: centres of N equal intervals */
    cr_assert_eq(us_video_sample_by_count(v, 4, &err), US_OK);
    us_video_frame f;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(us_video_next_frame(v, &f, &err), 1, "%s", err.msg);
        double want = in->start_s + (i + 0.5) * in->duration_s / 4;
        cr_expect_lt(fabs(f.target_s - want), 1e-3, "target %d: %.6f vs %.6f", i, f.target_s, want);
    }
    const double rates[] = {3.0, 7.3, 2 * r.fps};
    for (int c = 0; c < 3; c++) {
        char what[600];
        snprintf(what, sizeof what, "%s, %g frames/s", path, rates[c]);
        cr_assert_eq(us_video_sample_by_rate(v, rates[c], &err), US_OK, "%s", err.msg);
        int64_t want = (int64_t)ceil(in->duration_s * rates[c] - 1e-9);
        cr_expect_eq(us_video_sample_total(v), want, "%s: total %lld vs %lld", what,
                     (long long)us_video_sample_total(v), (long long)want);
        cr_assert_eq(run_plan(v, &r, 0, 0, what), us_video_sample_total(v));
    }
    const int kf_counts[] = {7, 2 * r.n + 3};
    for (int c = 0; c < 2; c++) {
        char what[600];
        snprintf(what, sizeof what, "%s, %d frames, keyframes", path, kf_counts[c]);
        cr_assert_eq(us_video_sample_by_count_keyframes(v, kf_counts[c], &err), US_OK, "%s", err.msg);
        cr_assert_eq(run_plan(v, &r, kf_counts[c], strict_kf, what), kf_counts[c]);
    }
    us_video_close(&v);
    cr_assert_null(v);
    ref_free(&r);
}

#define SRC_3S "size=160x120:rate=25:duration=3"

Test(video, h264_mp4_bframes_ntsc_rate)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "h264.mp4", "size=176x144:rate=30000/1001:duration=3",
               "-c:v libx264 -preset veryfast -g 15 -bf 2 -pix_fmt yuv420p");
    check_video(path, "h264", 0, 1);
}

Test(video, mpeg4_avi)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "mpeg4.avi", SRC_3S, "-c:v mpeg4 -g 12 -q:v 4");
    check_video(path, "mpeg4", 0, 1);
}

Test(video, vp9_webm)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "vp9.webm", SRC_3S, "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 12");
    check_video(path, "vp9", 0, 0);
}

Test(video, mjpeg_mkv_full_range)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "mjpeg.mkv", SRC_3S, "-c:v mjpeg -q:v 3");
    check_video(path, "mjpeg", 1, 0);
}

Test(video, h264_mpegts_nonzero_start)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "h264.ts", SRC_3S, "-c:v libx264 -preset veryfast -g 12 -pix_fmt yuv420p");
    reference r = ref_load(path);
    cr_assert_gt(r.pts[0], 1.0, "MPEG-TS was expected to start late, at %.3f s", r.pts[0]);
    ref_free(&r);
    check_video(path, "h264", 0, 0);
}

/* Matroska written to a pipe has no duration and no cues: the reader scans for the duration and seeks
 * without an index. */
Test(video, mkv_from_pipe_without_duration)
{
    need_ffmpeg();
    char path[600];
    tmp_path(path, sizeof path, "piped.mkv");
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=" SRC_3S " -c:v libx264 -preset veryfast -g 12 "
       "-pix_fmt yuv420p -f matroska - > %s",
       path);
    us_video *v = NULL;
    us_error err;
    cr_assert_eq(us_video_open(path, 0, &v, &err), US_OK, "%s", err.msg);
    cr_expect_str_eq(us_video_get_info(v)->duration_source, "scan");
    us_video_close(&v);
    check_video(path, "h264", 0, 0);
}

/* Sampling seeks: 7 frames of a 40 s clip with a keyframe every second decode at most a GOP each, not
 * the 1000 frames of the clip. */
Test(video, seeks_instead_of_decoding_everything)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "long.mp4", "size=64x48:rate=25:duration=40",
               "-c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p");
    us_video *v = NULL;
    us_error err;
    us_video_frame f;
    cr_assert_eq(us_video_open(path, 0, &v, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_video_sample_by_count(v, 7, &err), US_OK);
    while (us_video_next_frame(v, &f, &err) == 1) {}
    int64_t decoded = us_video_decoded_count(v);
    cr_log_info("7 frames of 1000: %lld frames decoded", (long long)decoded);
    cr_expect_leq(decoded, 7 * 25, "%lld frames decoded for 7 samples", (long long)decoded);
    us_video_close(&v);
    check_video(path, "h264", 2, 1);
}

/* ---- (d) video errors ------------------------------------------------------------------------------ */

static us_status open_and_sample(const char *path, us_error *err)
{
    us_video *v = NULL;
    us_status s = us_video_open(path, 0, &v, err);
    if (s == US_OK) s = us_video_sample_by_count(v, 16, err);
    us_video_frame f;
    int got = 0;
    while (s == US_OK && (got = us_video_next_frame(v, &f, err)) == 1) {}
    if (s == US_OK && got < 0) s = (us_status)got;
    us_video_close(&v);
    return s;
}

static void expect_video_error(const char *path, us_status want, const char *words)
{
    us_error err = {0};
    us_status s = open_and_sample(path, &err);
    cr_log_info("%s", err.msg);
    cr_expect_eq(s, want, "%s: status %d, want %d: %s", path, s, want, err.msg);
    cr_expect_not_null(strstr(err.msg, path), "the message does not name the file: %s", err.msg);
    if (words) cr_expect_not_null(strstr(err.msg, words), "the message does not say '%s': %s", words, err.msg);
}

Test(video_bad, missing_empty_random_directory)
{
    char path[600];
    tmp_path(path, sizeof path, "missing.mp4");
    expect_video_error(path, US_ERR_IO, "No such file");
    tmp_path(path, sizeof path, "empty.mp4");
    write_bytes(path, "", 0);
    expect_video_error(path, US_ERR_FORMAT, "empty");
    uint8_t junk[65536];
    fill_random(junk, sizeof junk, 11);
    tmp_path(path, sizeof path, "random.mp4");
    write_bytes(path, junk, sizeof junk);
    us_error err;
    us_status s = open_and_sample(path, &err);
    cr_log_info("%s", err.msg);
    cr_expect(s == US_ERR_FORMAT || s == US_ERR_UNSUPPORTED, "random bytes: status %d: %s", s, err.msg);
    cr_expect_not_null(strstr(err.msg, path), "%s", err.msg);
    expect_video_error(g_dir, US_ERR_IO, "directory");
}

/* Cut in half three ways: MP4 with its index at the end (unopenable), MP4 with the index first and
 * Matroska (both open; sampling past the data must fail, not repeat the last frame). */
Test(video_bad, truncated)
{
    need_ffmpeg();
    const struct {
        const char *name, *args;
    } cuts[] = {
        {"tail-index.mp4", "-c:v libx264 -preset veryfast -g 12"},
        {"faststart.mp4", "-c:v libx264 -preset veryfast -g 12 -movflags +faststart"},
        {"cut.mkv", "-c:v libx264 -preset veryfast -g 12"},
    };
    for (int i = 0; i < 3; i++) {
        char path[600], half[700];
        make_video(path, sizeof path, cuts[i].name, SRC_3S, cuts[i].args);
        size_t n;
        uint8_t *b = read_bytes(path, &n);
        snprintf(half, sizeof half, "%s.half", path);
        write_bytes(half, b, n / 2);
        free(b);
        expect_video_error(half, US_ERR_FORMAT, NULL);
        unlink(half);
    }
}

Test(video_bad, audio_only)
{
    need_ffmpeg();
    char path[600];
    tmp_path(path, sizeof path, "sine.m4a");
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=frequency=440:duration=1 -c:a aac %s", path);
    expect_video_error(path, US_ERR_UNSUPPORTED, "no video stream");
}

/* An AVI whose codec tag names no codec FFmpeg knows. */
Test(video_bad, unsupported_codec)
{
    need_ffmpeg();
    char path[600], bad[700];
    make_video(path, sizeof path, "mjpeg.avi", "size=64x48:rate=10:duration=1", "-c:v mjpeg");
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    int patched = 0;
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(b + i, "MJPG", 4) == 0) memcpy(b + i, "ZQ9X", 4), patched++;
    cr_assert_gt(patched, 0, "no MJPG tag in %s", path);
    snprintf(bad, sizeof bad, "%s/zq9x.avi", g_dir);
    write_bytes(bad, b, n);
    free(b);
    expect_video_error(bad, US_ERR_UNSUPPORTED, "unsupported video codec");
}

Test(video_bad, counts_and_rates)
{
    need_ffmpeg();
    char path[600];
    make_video(path, sizeof path, "ok.mp4", "size=64x48:rate=10:duration=1", "-c:v libx264 -preset veryfast");
    us_video *v = NULL;
    us_error err;
    us_video_frame f;
    cr_assert_eq(us_video_open(path, 0, &v, &err), US_OK, "%s", err.msg);
    cr_expect_eq(us_video_next_frame(v, &f, &err), US_ERR_INVALID, "no plan yet");
    cr_expect_eq(us_video_sample_by_count(v, 0, &err), US_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_expect_eq(us_video_sample_by_count(v, -3, &err), US_ERR_INVALID);
    cr_expect_eq(us_video_sample_by_count_keyframes(v, 0, &err), US_ERR_INVALID);
    cr_expect_eq(us_video_sample_by_rate(v, 0.0, &err), US_ERR_INVALID);
    cr_expect_eq(us_video_sample_by_rate(v, -1.0, &err), US_ERR_INVALID);
    cr_expect_eq(us_video_sample_by_rate(v, NAN, &err), US_ERR_INVALID);
    cr_expect_eq(us_video_sample_by_rate(v, INFINITY, &err), US_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, path), "%s", err.msg);
    us_video *other = NULL;
    cr_expect_eq(us_video_open(path, -1, &other, &err), US_ERR_INVALID);
    cr_expect_null(other);
    us_video_close(&v);
    us_video_close(&v); /* a second close is harmless */
}

#else

Test(video, skipped_without_ffmpeg)
{
    cr_skip("built without FFmpeg (US_ENABLE_FFMPEG=OFF or libav* not found): the video reader is left out");
}

#endif
