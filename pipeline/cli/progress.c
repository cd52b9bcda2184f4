/* progress.c: see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void draw(const us_progress *p, const char *what)
{
    if (!p->tty) return;
    int width = 30, fill = p->total > 0 ? p->done * width / p->total : 0;
    fprintf(stderr, "\r%s [", p->title);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d %6.1fs %-40.40s", p->done, p->total, now_s() - p->t0, what ? what : "");
    fflush(stderr);
}

void us_progress_start(us_progress *p, const char *title, int total)
{
    p->title = title;
    p->total = total;
    p->done = 0;
    p->tty = isatty(2);
    p->t0 = now_s();
    draw(p, "");
}

void us_progress_step(us_progress *p, const char *what)
{
    p->done++;
    draw(p, what);
}

void us_progress_set(us_progress *p, int done, int total, const char *what)
{
    p->done = done;
    p->total = total;
    draw(p, what);
}

void us_progress_clear(const us_progress *p)
{
    if (p->tty) fprintf(stderr, "\r\033[K");
}

void us_progress_end(us_progress *p)
{
    if (p->tty) fprintf(stderr, "\r\033[K");
    p->tty = false;
}
