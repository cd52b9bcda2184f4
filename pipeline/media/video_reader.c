/* video_reader.c: see video_reader.h for the sampling rule and the API.
 *
 * State machine, in one paragraph. `last` is the most recent frame out of the decoder (presentation
 * order). Targets only move forward within a plan, so a target is answered either by `last` again
 * (it already answered an earlier target and is still >= this one), by decoding on from `last`, or by
 * a seek backward to the keyframe before the target followed by decoding on. After a seek, packets
 * before the first keyframe are dropped (a demuxer without an index, such as MPEG-TS, may land
 * mid-GOP, and frames decoded there would lack their references); if the first frame out is already
 * past the target, the seek landed too late and is retried 1, 2, 4, ... s earlier; if no keyframe
 * follows the seek point at all, the stream has no keyframe flags and is decoded from the start. At
 * the end of the stream the last frame answers what is left, unless the gap says the file is cut
 * short. */
#include "video_reader.h"
#include "ffmpeg_log.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libavutil/version.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Chroma interpolated to full resolution (bicubic) rather than repeated. SWS_ACCURATE_RND would move
 * some values by one level and costs ~20 ms per 1080p frame (it leaves the SIMD paths): ~1 ms without. */
#define RGB_SWS_FLAGS (SWS_BICUBIC | SWS_FULL_CHR_H_INT)
/* Where the container has no index, decode on rather than seek when the target is this close. */
#define NO_INDEX_SEEK_GAP_S 2.0
/* A seek that lands after its target is retried from 1 s earlier, doubling, this many times. */
#define MAX_RESEEKS 16
/* Keyframe plans: at most this many indexed keyframes are tried for one interval (each costs a frame). */
#define KEY_CANDIDATES 4
/* Corrupt packets tolerated (the decoder conceals them) before the file is called corrupt. */
#define MAX_BAD_PACKETS 64

enum { PLAN_NONE, PLAN_COUNT, PLAN_RATE };

struct us_video {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVStream *st;
    int stream;
    AVPacket *pkt;
    AVFrame *frame;  /* decoder output, moved into last at once */
    AVFrame *last;   /* owned; valid when last_valid */
    struct SwsContext *sws;
    int sws_colorspace, sws_full; /* what the colour details were set for; -1 when not yet */
    uint8_t *rgb;    /* av_malloc'd, rgb_size bytes; holds `last` converted when rgb_valid */
    size_t rgb_size;
    us_video_info info;

    int64_t start_ts, dur_ts, frame_dur_ts; /* in st->time_base */

    int plan;
    int64_t count;   /* PLAN_COUNT */
    int keyframes;   /* PLAN_COUNT: an indexed keyframe inside the interval answers first */
    AVRational rate; /* PLAN_RATE: frames per second */
    int64_t total, next;

    int started;        /* a packet has gone to the decoder since open */
    int positioned;     /* decoding on continues from last (or from the start when nothing decoded) */
    int last_valid, last_delivered, rgb_valid;
    int64_t last_ts;
    int eof;            /* the decoder is drained: last (if any) is the stream's final frame */
    int draining;       /* the end-of-stream packet was sent */
    int need_key;       /* after a seek: drop packets until a keyframe */
    int first_after_seek;
    int64_t seek_ts;    /* the timestamp of the last seek */
    int read_error;     /* the AVERROR that ended demuxing early, 0 for a clean end */
    char read_detail[256];
    int bad_packets;
    int64_t decoded;    /* frames out of the decoder since open */
    int no_keyframes;   /* no packet is flagged as a keyframe: never seek but to the start */
};

/* ---- messages ----------------------------------------------------------------------------------- */

/* "<path>: <what>[: <FFmpeg's error>][ (<FFmpeg's last logged error>)]" */
static us_status fail_av(us_error *err, us_status code, const char *path, int averr, const char *what)
{
    char averr_text[AV_ERROR_MAX_STRING_SIZE] = "";
    if (averr < 0) av_strerror(averr, averr_text, sizeof averr_text);
    const char *detail = us_ffmpeg_log_last();
    return us_error_set(err, code, "%s: %s%s%s%s%s%s", path, what, averr_text[0] ? ": " : "", averr_text,
                        detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

static double ts_to_s(const us_video *v, int64_t ts) { return (double)ts * av_q2d(v->st->time_base); }
static int64_t s_to_ts(const us_video *v, double s) { return llround(s / av_q2d(v->st->time_base)); }

/* ---- open ---------------------------------------------------------------------------------------- */

/* The video stream to read: FFmpeg's pick, unless that is cover art; -1 when there is none. */
static int pick_stream(AVFormatContext *fmt)
{
    int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (best >= 0 && !(fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(fmt->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return (int)i;
    return -1;
}

/* Reads every packet of the stream (no decoding) in a second demuxer, for files whose headers give no
 * duration: first and end (pts + duration) timestamps, or -1 when it found none. */
static int scan_stream(const char *path, int stream, int64_t frame_dur, int64_t *first, int64_t *end)
{
    AVFormatContext *f = NULL;
    AVPacket *p = av_packet_alloc();
    *first = *end = AV_NOPTS_VALUE;
    if (!p || avformat_open_input(&f, path, NULL, NULL) < 0 || avformat_find_stream_info(f, NULL) < 0 ||
        stream >= (int)f->nb_streams) {
        av_packet_free(&p);
        avformat_close_input(&f);
        return -1;
    }
    for (unsigned i = 0; i < f->nb_streams; i++)
        if ((int)i != stream) f->streams[i]->discard = AVDISCARD_ALL;
    while (av_read_frame(f, p) >= 0) {
        if (p->stream_index == stream) {
            int64_t t = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
            if (t != AV_NOPTS_VALUE) {
                int64_t e = t + (p->duration > 0 ? p->duration : frame_dur);
                if (*first == AV_NOPTS_VALUE || t < *first) *first = t;
                if (*end == AV_NOPTS_VALUE || e > *end) *end = e;
            }
        }
        av_packet_unref(p);
    }
    av_packet_free(&p);
    avformat_close_input(&f);
    return *end == AV_NOPTS_VALUE ? -1 : 0;
}

/* start_ts, dur_ts and info.duration_source: the stream's own numbers, else the container's, else a
 * scan. A duration libavformat guessed from the bit rate is no duration. */
static void find_timing(us_video *v)
{
    AVStream *st = v->st;
    AVFormatContext *fmt = v->fmt;
    int guessed = fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE;
    v->start_ts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    v->dur_ts = 0;
    if (!guessed && st->duration != AV_NOPTS_VALUE && st->duration > 0) {
        v->dur_ts = st->duration;
        v->info.duration_source = "stream";
    } else if (!guessed && fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
        int64_t fs = fmt->start_time != AV_NOPTS_VALUE ? fmt->start_time : 0;
        int64_t end = av_rescale_q(fs + fmt->duration, AV_TIME_BASE_Q, st->time_base);
        v->dur_ts = end - v->start_ts;
        v->info.duration_source = "container";
    }
    if (v->dur_ts <= 0) {
        int64_t first, end;
        v->info.duration_source = "scan";
        if (scan_stream(v->path, v->stream, v->frame_dur_ts, &first, &end) == 0) {
            if (st->start_time == AV_NOPTS_VALUE) v->start_ts = first;
            v->dur_ts = end - v->start_ts;
        }
        if (v->dur_ts < 0) v->dur_ts = 0;
    }
}

us_status us_video_open(const char *path, int threads, us_video **out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "us_video_open: out is NULL");
    *out = NULL;
    if (!path || !path[0]) return us_error_set(err, US_ERR_INVALID, "us_video_open: no path");
    if (threads < 0) return us_error_set(err, US_ERR_INVALID, "%s: threads = %d: must be >= 0", path, threads);
    struct stat sb;
    if (stat(path, &sb) != 0) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return us_error_set(err, US_ERR_IO, "%s: is a directory, not a video file", path);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0)
        return us_error_set(err, US_ERR_FORMAT, "%s: empty file (0 bytes), not a video", path);

    us_ffmpeg_log_capture();
    us_ffmpeg_log_clear();
    us_status s = US_ERR_NOMEM;
    us_video *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path)) || !(v->pkt = av_packet_alloc()) || !(v->frame = av_frame_alloc()) ||
        !(v->last = av_frame_alloc())) {
        us_error_set(err, s, "%s: out of memory opening the video", path);
        goto fail;
    }
    v->sws_colorspace = -1;

    int ret = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (ret < 0) {
        s = fail_av(err, ret == AVERROR(ENOENT) || ret == AVERROR(EACCES) ? US_ERR_IO : US_ERR_FORMAT, path, ret,
                    "not a readable media file");
        goto fail;
    }
    ret = avformat_find_stream_info(v->fmt, NULL);
    if (ret < 0) {
        s = fail_av(err, US_ERR_FORMAT, path, ret, "corrupt or truncated: cannot read its stream information");
        goto fail;
    }
    v->stream = pick_stream(v->fmt);
    if (v->stream < 0) {
        char kinds[128] = "";
        for (unsigned i = 0; i < v->fmt->nb_streams && strlen(kinds) < sizeof kinds - 24; i++) {
            const char *k = av_get_media_type_string(v->fmt->streams[i]->codecpar->codec_type);
            snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s", i ? ", " : "", k ? k : "unknown");
        }
        s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: no video stream (the file has %u stream%s%s%s%s)", path,
                         v->fmt->nb_streams, v->fmt->nb_streams == 1 ? "" : "s", kinds[0] ? ": " : "", kinds,
                         v->fmt->nb_streams && strstr(kinds, "video") == NULL ? "; audio-only or data-only" : "");
        goto fail;
    }
    v->st = v->fmt->streams[v->stream];
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != v->stream) v->fmt->streams[i]->discard = AVDISCARD_ALL; /* the demuxer skips them */

    const AVCodecParameters *par = v->st->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        char tag[AV_FOURCC_MAX_STRING_SIZE];
        av_fourcc_make_string(tag, par->codec_tag);
        s = us_error_set(err, US_ERR_UNSUPPORTED,
                         "%s: unsupported video codec '%s' (tag %s): this FFmpeg has no decoder for it", path,
                         avcodec_get_name(par->codec_id), tag);
        goto fail;
    }
    if (!(v->dec = avcodec_alloc_context3(codec)) || avcodec_parameters_to_context(v->dec, par) < 0) {
        us_error_set(err, s, "%s: out of memory setting up the %s decoder", path, codec->name);
        goto fail;
    }
    v->dec->pkt_timebase = v->st->time_base;
    v->dec->thread_count = threads;
    v->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    us_ffmpeg_log_clear();
    ret = avcodec_open2(v->dec, codec, NULL);
    if (ret < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot open the %s decoder", codec->name);
        s = fail_av(err, US_ERR_UNSUPPORTED, path, ret, what);
        goto fail;
    }
    if (par->width <= 0 || par->height <= 0) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: corrupt or truncated: the %s stream has no frame size", path,
                         codec->name);
        goto fail;
    }

    us_video_info *in = &v->info;
    in->width = par->width;
    in->height = par->height;
    snprintf(in->codec, sizeof in->codec, "%s", avcodec_get_name(par->codec_id));
    snprintf(in->container, sizeof in->container, "%s", v->fmt->iformat->name);
    AVRational fr = v->st->avg_frame_rate.num > 0 && v->st->avg_frame_rate.den > 0 ? v->st->avg_frame_rate
                                                                                    : v->st->r_frame_rate;
    in->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
    v->frame_dur_ts = in->fps > 0 ? av_rescale_q(1, av_inv_q(fr), v->st->time_base) : 0;
    find_timing(v);
    in->start_s = ts_to_s(v, v->start_ts);
    in->duration_s = ts_to_s(v, v->dur_ts);
    in->frame_count = v->st->nb_frames > 0 ? v->st->nb_frames : 0;
    v->positioned = 1;
    *out = v;
    return US_OK;

fail:
    us_video_close(&v);
    return s;
}

void us_video_close(us_video **pv)
{
    if (!pv || !*pv) return;
    us_video *v = *pv;
    sws_freeContext(v->sws);
    av_free(v->rgb);
    av_frame_free(&v->frame);
    av_frame_free(&v->last);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    free(v->path);
    free(v);
    *pv = NULL;
}

const us_video_info *us_video_get_info(const us_video *v) { return v ? &v->info : NULL; }

/* ---- plans --------------------------------------------------------------------------------------- */

static void plan_reset(us_video *v)
{
    v->next = 0;
    v->last_delivered = 0;
    if (v->started) v->positioned = 0; /* the first target may lie behind: seek to it */
}

static us_status plan_count(us_video *v, int n, int keyframes, us_error *err)
{
    if (!v) return us_error_set(err, US_ERR_INVALID, "us_video_sample_by_count: no video");
    if (n <= 0) return us_error_set(err, US_ERR_INVALID, "%s: frame count %d: must be at least 1", v->path, n);
    v->plan = PLAN_COUNT;
    v->count = n;
    v->keyframes = keyframes;
    v->total = n;
    plan_reset(v);
    return US_OK;
}

us_status us_video_sample_by_count(us_video *v, int n, us_error *err) { return plan_count(v, n, 0, err); }
us_status us_video_sample_by_count_keyframes(us_video *v, int n, us_error *err) { return plan_count(v, n, 1, err); }

us_status us_video_sample_by_rate(us_video *v, double fps, us_error *err)
{
    if (!v) return us_error_set(err, US_ERR_INVALID, "us_video_sample_by_rate: no video");
    if (!(fps > 0) || !isfinite(fps))
        return us_error_set(err, US_ERR_INVALID, "%s: sampling rate %g frames/s: must be positive and finite", v->path,
                            fps);
    AVRational r = av_d2q(fps, 1000000);
    if (r.num <= 0 || r.den <= 0)
        return us_error_set(err, US_ERR_INVALID, "%s: sampling rate %g frames/s is out of range", v->path, fps);
    v->plan = PLAN_RATE;
    v->rate = r;
    v->keyframes = 0;
    /* ceil(D * F): the count of k >= 0 with k / F < D */
    v->total = av_rescale_q_rnd(v->dur_ts, v->st->time_base, av_inv_q(r), AV_ROUND_UP);
    if (v->total < 1) v->total = 1;
    plan_reset(v);
    return US_OK;
}

int64_t us_video_sample_total(const us_video *v) { return v && v->plan != PLAN_NONE ? v->total : 0; }
int64_t us_video_decoded_count(const us_video *v) { return v ? v->decoded : 0; }

/* Target i of the plan, in the stream's time base, rounded up: frame timestamps are integers, so the
 * first frame >= the rounded target is the first frame >= the exact one. */
static int64_t target_ts(const us_video *v, int64_t i)
{
    if (v->plan == PLAN_COUNT) return v->start_ts + av_rescale_rnd(2 * i + 1, v->dur_ts, 2 * v->count, AV_ROUND_UP);
    return v->start_ts + av_rescale_q_rnd(i, av_inv_q(v->rate), v->st->time_base, AV_ROUND_UP);
}

/* Target i in seconds, exact (for the caller; the search uses target_ts). */
static double target_s(const us_video *v, int64_t i)
{
    if (v->plan == PLAN_COUNT)
        return v->info.start_s + (double)(2 * i + 1) * v->info.duration_s / (double)(2 * v->count);
    return v->info.start_s + (double)i * v->rate.den / v->rate.num;
}

/* ---- decoding ------------------------------------------------------------------------------------ */

static int64_t frame_ts(const us_video *v, const AVFrame *f)
{
    int64_t t = f->best_effort_timestamp;
    if (t == AV_NOPTS_VALUE) t = f->pts;
    if (t == AV_NOPTS_VALUE) t = v->last_valid ? v->last_ts + v->frame_dur_ts : v->start_ts;
    return t;
}

/* The next frame out of the decoder into last: 1, 0 at the end of the stream, or a negative status. */
static int decode_next(us_video *v, us_error *err)
{
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, v->frame);
        if (ret >= 0) {
            int64_t ts = frame_ts(v, v->frame);
            av_frame_unref(v->last);
            av_frame_move_ref(v->last, v->frame);
            v->last_ts = ts;
            v->last_valid = 1;
            v->decoded++;
            v->last_delivered = 0;
            v->rgb_valid = 0;
            return 1;
        }
        if (ret == AVERROR_EOF) return 0;
        if (ret != AVERROR(EAGAIN)) {
            if (ret == AVERROR_INVALIDDATA && ++v->bad_packets <= MAX_BAD_PACKETS) continue;
            return fail_av(err, US_ERR_FORMAT, v->path, ret, "corrupt video data: decoding failed");
        }
        if (v->draining) return 0;
        us_ffmpeg_log_clear();
        ret = av_read_frame(v->fmt, v->pkt);
        if (ret < 0) {
            /* The end, clean or not: what was read still decodes, and a target past it reports why. */
            if (ret != AVERROR_EOF) {
                v->read_error = ret;
                snprintf(v->read_detail, sizeof v->read_detail, "%s", us_ffmpeg_log_last());
            }
            v->draining = 1;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (v->pkt->stream_index != v->stream || (v->need_key && !(v->pkt->flags & AV_PKT_FLAG_KEY))) {
            av_packet_unref(v->pkt);
            continue;
        }
        v->need_key = 0;
        v->started = 1;
        ret = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            if (ret == AVERROR_INVALIDDATA && ++v->bad_packets <= MAX_BAD_PACKETS) continue;
            return fail_av(err, US_ERR_FORMAT, v->path, ret, "corrupt video data: decoding failed");
        }
    }
}

/* The lowest seek target: a second before the first frame. Demuxers that seek by searching
 * timestamps (MPEG-TS) compare decode timestamps, which run ahead of the presentation ones by the
 * B-frame delay, so seeking to start_ts itself can land after the first keyframe. */
static int64_t seek_floor(const us_video *v) { return v->start_ts - s_to_ts(v, 1.0); }

/* Seeks to the keyframe at or before ts (forward: at or after it); <0 (an AVERROR) when the demuxer
 * cannot. */
static int seek_dir(us_video *v, int64_t ts, int forward)
{
    int from_start = ts <= v->start_ts;
    if (from_start) ts = seek_floor(v); /* so that the file's first packets come next */
    int64_t lo = forward ? ts : INT64_MIN, hi = forward ? INT64_MAX : ts;
    int ret = avformat_seek_file(v->fmt, v->stream, lo, ts, hi, 0);
    if (ret < 0 && from_start) /* some demuxers (AVI) refuse a time before the first frame */
        ret = avformat_seek_file(v->fmt, v->stream, INT64_MIN, v->start_ts, forward ? INT64_MAX : v->start_ts, 0);
    if (ret < 0) return ret;
    avcodec_flush_buffers(v->dec);
    av_frame_unref(v->last);
    v->last_valid = v->last_delivered = v->rgb_valid = 0;
    v->eof = v->draining = 0;
    v->read_error = 0;
    v->read_detail[0] = '\0';
    v->positioned = 1;
    v->need_key = !from_start; /* from the very start, take what comes */
    v->first_after_seek = 1;
    v->seek_ts = from_start ? seek_floor(v) : ts; /* nothing lies before the start to retry from */
    return 0;
}

static int seek_to(us_video *v, int64_t ts) { return seek_dir(v, ts, 0); }

/* Whether a seek reaches target T sooner than decoding on from where the decoder stands. */
static int worth_seeking(us_video *v, int64_t T)
{
    int64_t at = v->last_valid ? v->last_ts : v->start_ts;
    if (avformat_index_get_entries_count(v->st) > 0) {
        const AVIndexEntry *e = avformat_index_get_entry_from_timestamp(v->st, T, AVSEEK_FLAG_BACKWARD);
        return e && e->timestamp > at; /* a keyframe lies between here and the target */
    }
    return ts_to_s(v, T - at) > NO_INDEX_SEEK_GAP_S;
}

/* Nothing at or after T: the last frame answers, unless the stream stops too early for that. */
static us_status past_end(us_video *v, int64_t T, us_error *err)
{
    char why[400] = "";
    if (v->read_error) {
        char e[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(v->read_error, e, sizeof e);
        snprintf(why, sizeof why, "; reading stopped: %s%s%s%s", e, v->read_detail[0] ? " (" : "", v->read_detail,
                 v->read_detail[0] ? ")" : "");
    }
    if (!v->last_valid)
        return us_error_set(err, US_ERR_FORMAT, "%s: corrupt or truncated: no video frame could be decoded%s", v->path,
                            why);
    double gap = ts_to_s(v, T - v->last_ts);
    double slack = v->info.fps > 0 && 2.0 / v->info.fps > 1.0 ? 2.0 / v->info.fps : 1.0;
    if (gap > slack)
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: truncated or corrupt: the video stops at %.3f s but the file says it lasts to %.3f s "
                            "(no frame for %.3f s)%s",
                            v->path, ts_to_s(v, v->last_ts), ts_to_s(v, v->start_ts + v->dur_ts), ts_to_s(v, T), why);
    return US_OK;
}

/* Leaves in last the first frame with timestamp >= T (or the stream's last frame). */
static us_status find_frame(us_video *v, int64_t T, us_error *err)
{
    if (v->last_valid && v->last_delivered && v->last_ts >= T) return US_OK; /* answers this target too */
    if (v->eof && v->last_valid && v->last_ts < T) return past_end(v, T, err);
    int on = v->positioned && !v->eof && (!v->last_valid || v->last_ts < T);
    if (!on || (!v->no_keyframes && worth_seeking(v, T))) {
        us_ffmpeg_log_clear();
        int ret = seek_to(v, v->no_keyframes ? seek_floor(v) : T);
        if (ret < 0 && !on) {
            char what[96];
            snprintf(what, sizeof what, "cannot seek back to %.3f s", ts_to_s(v, T));
            return fail_av(err, US_ERR_UNSUPPORTED, v->path, ret, what);
        }
        /* a failed seek forward: decoding on gets there too */
    }
    for (int reseeks = 0;;) {
        int r = decode_next(v, err);
        if (r < 0) return (us_status)r;
        if (r == 0 && !v->last_valid && v->need_key) {
            /* No packet after the seek point is marked as a keyframe: this stream cannot be entered
             * midway, so it is decoded from the start from now on. */
            v->no_keyframes = 1;
            if (seek_to(v, seek_floor(v)) < 0)
                return fail_av(err, US_ERR_UNSUPPORTED, v->path, AVERROR(EINVAL), "cannot seek back to the start");
            continue;
        }
        int late = r == 1 && v->first_after_seek && v->last_ts > T;
        v->first_after_seek = 0;
        if (late && v->seek_ts > seek_floor(v) && reseeks < MAX_RESEEKS) {
            /* The seek landed after T: go back further. */
            int64_t back = s_to_ts(v, (double)(1 << reseeks));
            reseeks++;
            if (seek_to(v, v->seek_ts - (back > 0 ? back : 1)) < 0)
                return fail_av(err, US_ERR_UNSUPPORTED, v->path, AVERROR(EINVAL), "cannot seek back far enough");
            continue;
        }
        if (r == 0) {
            v->eof = 1;
            v->positioned = 0;
            return past_end(v, T, err);
        }
        if (v->last_ts >= T) return US_OK;
    }
}

static int is_key(const AVFrame *f)
{
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 7, 100)
    return (f->flags & AV_FRAME_FLAG_KEY) != 0;
#else
    return f->key_frame;
#endif
}

/* Keyframe plans: the first keyframe the index lists in [a, b), decoded alone into last: 1 when it
 * answers, 0 when the exact rule must (no index, or no indexed keyframe there), or a negative status.
 * Index times may be decode times (MP4), earlier than presentation times by the reorder delay, while
 * seeks may take presentation times: so candidates start that delay (plus a frame) before a, each is
 * reached by a forward seek (which lands on it under either reading) and its decoded timestamp
 * decides. */
static int keyframe_in(us_video *v, int64_t a, int64_t b, us_error *err)
{
    int n = avformat_index_get_entries_count(v->st);
    if (v->no_keyframes || n == 0) return 0;
    int64_t delay = (int64_t)(v->dec->has_b_frames + 1) * (v->frame_dur_ts > 0 ? v->frame_dur_ts : 1);
    int i = av_index_search_timestamp(v->st, a - delay, 0); /* the first keyframe entry >= */
    for (int tries = 0; i >= 0 && i < n && tries < KEY_CANDIDATES; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(v->st, i);
        if (!(e->flags & AVINDEX_KEYFRAME)) continue;
        if (e->timestamp >= b) break; /* presentation comes no earlier than decode */
        tries++;
        us_ffmpeg_log_clear();
        if (seek_dir(v, e->timestamp, 1) < 0) return 0;
        int r = decode_next(v, err);
        if (r < 0) return r;
        v->first_after_seek = 0;
        if (r == 0) {
            v->eof = 1;
            v->positioned = 0;
            return 0;
        }
        if (v->last_ts >= b) return 0;
        if (is_key(v->last) && v->last_ts >= a) return 1;
    }
    return 0;
}

/* ---- RGB ------------------------------------------------------------------------------------------ */

static int is_yuvj(enum AVPixelFormat f)
{
    return f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUVJ422P || f == AV_PIX_FMT_YUVJ444P ||
           f == AV_PIX_FMT_YUVJ440P || f == AV_PIX_FMT_YUVJ411P;
}

static us_status convert_last(us_video *v, us_error *err)
{
    const AVFrame *f = v->last;
    size_t need = (size_t)f->width * (size_t)f->height * 3;
    if (need > v->rgb_size) {
        av_free(v->rgb);
        v->rgb_size = 0;
        if (!(v->rgb = av_malloc(need)))
            return us_error_set(err, US_ERR_NOMEM, "%s: out of memory for a %dx%d RGB frame", v->path, f->width,
                                f->height);
        v->rgb_size = need;
    }
    struct SwsContext *c = sws_getCachedContext(v->sws, f->width, f->height, f->format, f->width, f->height,
                                                AV_PIX_FMT_RGB24, RGB_SWS_FLAGS, NULL, NULL, NULL);
    if (!c) {
        const char *name = av_get_pix_fmt_name(f->format);
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: cannot convert pixel format %s to RGB", v->path,
                            name ? name : "unknown");
    }
    if (c != v->sws) v->sws_colorspace = -1;
    v->sws = c;
    /* As FFmpeg's scale filter does: the frame's matrix (BT.601 when unstated) and range. */
    int full = f->color_range == AVCOL_RANGE_JPEG || is_yuvj(f->format);
    if ((int)f->colorspace != v->sws_colorspace || full != v->sws_full) {
        int *inv, *table, src_full, dst_full, brightness, contrast, saturation;
        if (sws_getColorspaceDetails(c, &inv, &src_full, &table, &dst_full, &brightness, &contrast, &saturation) >= 0)
            sws_setColorspaceDetails(c, sws_getCoefficients(f->colorspace), full, table, dst_full, brightness,
                                     contrast, saturation);
        v->sws_colorspace = (int)f->colorspace;
        v->sws_full = full;
    }
    uint8_t *dst[4] = {v->rgb, NULL, NULL, NULL};
    int dst_stride[4] = {3 * f->width, 0, 0, 0};
    if (sws_scale(c, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride) != f->height)
        return us_error_set(err, US_ERR_FORMAT, "%s: RGB conversion of a %dx%d frame failed", v->path, f->width,
                            f->height);
    v->rgb_valid = 1;
    return US_OK;
}

/* ---- the iterator --------------------------------------------------------------------------------- */

int us_video_next_frame(us_video *v, us_video_frame *frame, us_error *err)
{
    if (!v || !frame) return us_error_set(err, US_ERR_INVALID, "us_video_next_frame: no video or no frame");
    if (v->plan == PLAN_NONE)
        return us_error_set(err, US_ERR_INVALID, "%s: no sampling plan: call us_video_sample_by_count or _by_rate",
                            v->path);
    if (v->next >= v->total) return 0;
    int64_t T = target_ts(v, v->next);
    int found = 0;
    if (v->keyframes) { /* interval i is [start + i D / N, start + (i + 1) D / N) */
        int64_t a = v->start_ts + av_rescale_rnd(v->next, v->dur_ts, v->count, AV_ROUND_UP);
        int64_t b = v->start_ts + av_rescale_rnd(v->next + 1, v->dur_ts, v->count, AV_ROUND_UP);
        found = keyframe_in(v, a, b, err);
        if (found < 0) return found;
    }
    us_status s = found ? US_OK : find_frame(v, T, err);
    if (s == US_OK && !v->rgb_valid) s = convert_last(v, err);
    if (s != US_OK) return s;
    v->last_delivered = 1;
    frame->rgb = v->rgb;
    frame->width = v->last->width;
    frame->height = v->last->height;
    frame->index = v->next;
    frame->pts_s = ts_to_s(v, v->last_ts);
    frame->time_s = ts_to_s(v, v->last_ts - v->start_ts);
    frame->target_s = target_s(v, frame->index);
    v->next++;
    return 1;
}
