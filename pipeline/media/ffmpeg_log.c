/* ffmpeg_log.c: see ffmpeg_log.h. */
#include "ffmpeg_log.h"

#include <libavutil/log.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_last[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void log_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_ERROR) return; /* warnings and chatter go nowhere */
    char line[sizeof g_last];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    if (n > 0) memcpy(g_last, line, n + 1); /* FFmpeg sometimes logs a bare newline: keep the text */
}

static void install(void) { av_log_set_callback(log_callback); }

void us_ffmpeg_log_capture(void) { pthread_once(&g_once, install); }
void us_ffmpeg_log_clear(void) { g_last[0] = '\0'; }
const char *us_ffmpeg_log_last(void) { return g_last; }
