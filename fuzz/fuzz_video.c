/* fuzz_video.c: us_video_open (FFmpeg demuxers and decoders) on arbitrary bytes, then a plan of 2
 * frames by count, each converted to RGB, then a keyframe plan of 2. One decoder thread, so that a
 * run is deterministic. */
#include "fuzz_entry.h"

#include "unisparse/attention.h"

#ifndef US_HAVE_FFMPEG
int us_fuzz_video(const uint8_t *data, size_t size)
{
    (void)data, (void)size;
    return US_ERR_UNSUPPORTED; /* built without FFmpeg: no video reader */
}
#else
#include "video_reader.h"

int us_fuzz_video(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    us_video *v = NULL;
    us_error err;
    us_status s = us_video_open(path, 1, &v, &err);
    if (s) return s;
    us_video_frame f;
    volatile unsigned sum = 0;
    for (int keyframes = 0; keyframes < 2 && !s; keyframes++) {
        s = keyframes ? us_video_sample_by_count_keyframes(v, 2, &err) : us_video_sample_by_count(v, 2, &err);
        int r = 0;
        while (!s && (r = us_video_next_frame(v, &f, &err)) == 1) {
            size_t last = (size_t)f.width * (size_t)f.height * 3 - 1; /* the whole frame is there */
            sum += f.rgb[0] + f.rgb[last];
        }
        if (!s && r < 0) s = (us_status)r;
    }
    (void)sum;
    us_video_close(&v);
    return s;
}
#endif
