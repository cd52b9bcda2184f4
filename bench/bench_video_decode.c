/* bench_video_decode.c: time to sample frames from a video file with the media library's reader,
 * the figure behind bench/RESULTS.md (bench/bench_video_decode.sh makes the input and runs this).
 *
 *   build/bin/bench_video_decode FILE [--frames 64 [--keyframes] | --fps F] [--threads 0] [--repeat 3]
 *
 * --keyframes samples with us_video_sample_by_count_keyframes (an indexed keyframe per interval when
 * there is one) instead of the exact rule.
 * Each repeat opens the file, samples the plan to the end (every frame converted to RGB8 and
 * checksummed, so nothing is optimised away) and closes it; prints the file's facts, then the median
 * and the best wall time of the repeats, with open time and per-frame time. */
#include "stats.h"
#include "video_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: bench_video_decode FILE [--frames N [--keyframes] | --fps F] [--threads T] [--repeat R]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int frames = 64, threads = 0, repeat = 3, keyframes = 0;
    double fps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--frames") == 0 && val) frames = atoi(val), i++;
        else if (strcmp(a, "--fps") == 0 && val) fps = atof(val), i++;
        else if (strcmp(a, "--threads") == 0 && val) threads = atoi(val), i++;
        else if (strcmp(a, "--repeat") == 0 && val) repeat = atoi(val), i++;
        else if (strcmp(a, "--keyframes") == 0) keyframes = 1;
        else if (a[0] != '-' && !path) path = a;
        else return usage();
    }
    if (!path || repeat < 1) return usage();

    double *total = malloc((size_t)repeat * sizeof *total), *open_ms = malloc((size_t)repeat * sizeof *open_ms);
    int64_t n = 0, decoded = 0;
    unsigned long long sum = 0;
    us_error err;
    for (int r = 0; r < repeat; r++) {
        us_video *v = NULL;
        us_video_frame f;
        double t0 = us_wall_ms();
        if (us_video_open(path, threads, &v, &err) ||
            (fps > 0      ? us_video_sample_by_rate(v, fps, &err)
             : keyframes ? us_video_sample_by_count_keyframes(v, frames, &err)
                         : us_video_sample_by_count(v, frames, &err))) {
            fprintf(stderr, "bench_video_decode: %s\n", err.msg);
            return 1;
        }
        open_ms[r] = us_wall_ms() - t0;
        if (r == 0) {
            const us_video_info *in = us_video_get_info(v);
            printf("file: %s\n%s in %s, %dx%d, %.3f fps, %.3f s from %.3f s (duration from %s), %lld frames\n", path,
                   in->codec, in->container, in->width, in->height, in->fps, in->duration_s, in->start_s,
                   in->duration_source, (long long)in->frame_count);
        }
        int got;
        n = 0;
        while ((got = us_video_next_frame(v, &f, &err)) == 1) {
            for (size_t i = 0; i < (size_t)f.width * f.height * 3; i += 4099) sum += f.rgb[i];
            n++;
        }
        total[r] = us_wall_ms() - t0;
        decoded = us_video_decoded_count(v);
        us_video_close(&v);
        if (got < 0) {
            fprintf(stderr, "bench_video_decode: %s\n", err.msg);
            return 1;
        }
        printf("run %d: %lld frames in %.1f ms (open %.1f ms), %lld frames decoded\n", r + 1, (long long)n, total[r],
               open_ms[r], (long long)decoded);
    }
    double best = total[0];
    for (int r = 1; r < repeat; r++)
        if (total[r] < best) best = total[r];
    double med = us_median(total, repeat);
    printf("%s, frames %lld, threads %d: median %.2f s, best %.2f s, %.1f ms per frame (median); checksum %llu\n",
           fps > 0 ? "by rate" : keyframes ? "keyframes" : "exact", (long long)n, threads, med / 1e3, best / 1e3,
           med / (double)(n ? n : 1), sum);
    free(total);
    free(open_ms);
    return 0;
}
