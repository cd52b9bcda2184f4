/* ffmpeg_log.h: keeps FFmpeg's log off stderr and its last error line for our messages (internal to
 * the media library).
 *
 *   us_ffmpeg_log_capture();                  // once per process; cheap to call again
 *   us_ffmpeg_log_clear();
 *   if (avformat_open_input(...) < 0) ... us_ffmpeg_log_last()  // "" or e.g. "moov atom not found"
 *
 * The buffer is per thread, so a message from a decoder's worker thread is not seen by the caller's
 * thread; what matters (demuxer and open errors) happens on the caller's. */
#ifndef UNISPARSE_FFMPEG_LOG_H
#define UNISPARSE_FFMPEG_LOG_H

void us_ffmpeg_log_capture(void);
void us_ffmpeg_log_clear(void);
/* The last error-level line logged on this thread since the last clear, without its newline. */
const char *us_ffmpeg_log_last(void);

#endif
