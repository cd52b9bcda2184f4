/* video_reader.h: sampled RGB8 frames from any video file FFmpeg reads, one at a time.
 *
 *   us_video *v = NULL;
 *   us_error err;
 *   us_video_frame f;
 *   if (us_video_open("clip.mp4", 0, &v, &err) || us_video_sample_by_count(v, 32, &err)) goto fail;
 *   int r;
 *   while ((r = us_video_next_frame(v, &f, &err)) == 1)
 *       use(f.rgb, f.width, f.height, f.time_s);      // f.rgb: [height, width, 3], valid until the next call
 *   if (r < 0) goto fail;                              // err.msg names the file and the problem
 *   us_video_close(&v);
 *
 * Sampling. Let start be the first frame's presentation time and D the video stream's duration
 * (start to the end of its last frame). By count N: the targets are the centres of N equal intervals,
 * start + (i + 1/2) D / N for i = 0 .. N-1. By rate F: start + k / F for k = 0, 1, ... while k / F < D
 * (at least one). Each target is answered by the first frame whose presentation time is >= the target,
 * or, past the last frame, by the last frame; so a plan denser than the video repeats frames, and the
 * caller gets exactly the planned count. Targets are computed in the stream's own time base, so the
 * answer is exact, not subject to float rounding. Keyframe plans (us_video_sample_by_count_keyframes)
 * trade that exactness for speed: a keyframe inside each interval answers when the index lists one.
 *
 * How. Every target is reached by seeking backward to the keyframe before it and decoding forward
 * (with the codec's frame and slice threads); when the next target lies before the next keyframe the
 * reader just decodes on instead. The cost is about half a GOP of decoded frames per target (64
 * targets in 10 minutes of 1080p H.264 with a keyframe every 10 s: ~8000 frames, 26 s on the 2-core
 * machine of bench/RESULTS.md), a keyframe plan's about one (2.5 s there). Only one decoded frame and
 * one RGB buffer are held, never the video.
 * RGB conversion (libswscale, flags bicubic + full_chroma_int) follows the frame's colour matrix and
 * range (BT.601 when unstated), as FFmpeg's scale filter does, so `ffmpeg -i FILE -vf
 * scale=flags=bicubic+full_chroma_int,format=rgb24` gives the same bytes.
 *
 * Errors. Every call returns US_OK (0), or for us_video_next_frame 1 / 0, or a negative us_status with
 * a message naming the file: missing or unreadable (US_ERR_IO), empty, not a media file, corrupt or
 * truncated (US_ERR_FORMAT), no video stream or no decoder for its codec (US_ERR_UNSUPPORTED), a count
 * or rate <= 0 (US_ERR_INVALID). A file whose data stops well before the duration its header claims
 * fails at the first target past the data (more than max(1 s, two frames) after the last frame).
 *
 * Logging. FFmpeg prints to stderr by default; this library must not. The first us_video_open routes
 * FFmpeg's log (process-wide, once) into a per-thread buffer whose last error line is appended to
 * error messages, e.g. "(moov atom not found)". A host that wants FFmpeg's own log can set its own
 * av_log callback after that first open. */
#ifndef UNISPARSE_VIDEO_READER_H
#define UNISPARSE_VIDEO_READER_H

#include "unisparse/attention.h"

#include <stdint.h>

typedef struct us_video us_video;

typedef struct {
    int width, height;     /* of the video stream, in pixels */
    char codec[32];        /* FFmpeg's codec name: "h264", "hevc", "vp9", "mpeg4", "mjpeg", ... */
    char container[32];    /* FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm" */
    double fps;            /* average frame rate; 0 when the file gives none */
    double start_s;        /* presentation time of the first frame (non-zero e.g. in MPEG-TS) */
    double duration_s;     /* from start_s to the end of the last frame */
    int64_t frame_count;   /* as the container states it; 0 when it does not */
    const char *duration_source; /* "stream", "container" or "scan" (read every packet: no header had it) */
} us_video_info;

typedef struct {
    const uint8_t *rgb;    /* [height, width, 3] RGB8, rows packed; owned by the reader, valid until the
                              next call on it */
    int width, height;
    int64_t index;         /* 0-based position in the plan */
    double pts_s;          /* the frame's presentation time as the file states it */
    double time_s;         /* pts_s - info.start_s: seconds from the start of the video */
    double target_s;       /* the planned instant (file time, like pts_s) this frame answers */
} us_video_frame;

/* Opens path and its best video stream and its decoder. threads: decoder threads, 0 = one per core. */
us_status us_video_open(const char *path, int threads, us_video **out, us_error *err);
/* Closes and sets *v to NULL; a NULL or *v NULL is fine. */
void us_video_close(us_video **v);
const us_video_info *us_video_get_info(const us_video *v);

/* Plans n frames (n >= 1) or fps frames per second (fps > 0, finite); a new plan replaces the old one
 * and starts from its first target. */
us_status us_video_sample_by_count(us_video *v, int n, us_error *err);
/* n frames, one per interval [start + i D / n, start + (i + 1) D / n): the first keyframe that the
 * container's index lists inside the interval (MP4 sync samples, AVI keyframes, Matroska cues), else
 * the exact rule at the centre. A keyframe decodes alone, so this costs about one frame per sample
 * where the exact rule costs half a GOP; the frames are spread less evenly (each stays in its own
 * interval). target_s reports the centre. */
us_status us_video_sample_by_count_keyframes(us_video *v, int n, us_error *err);
us_status us_video_sample_by_rate(us_video *v, double fps, us_error *err);
/* Frames the current plan yields in all (0 before a plan). */
int64_t us_video_sample_total(const us_video *v);
/* Frames decoded since open: the work sampling cost (a seek skips the rest). */
int64_t us_video_decoded_count(const us_video *v);

/* The next planned frame into *frame: 1, 0 when the plan is done, or a negative us_status. */
int us_video_next_frame(us_video *v, us_video_frame *frame, us_error *err);

#endif
