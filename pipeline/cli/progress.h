/* progress.h: a one-line progress bar on stderr, drawn only when stderr is a terminal. */
#ifndef UNISPARSE_CLI_PROGRESS_H
#define UNISPARSE_CLI_PROGRESS_H

#include <stdbool.h>

typedef struct {
    const char *title;
    int total, done;
    bool tty;
    double t0;
} us_progress;

void us_progress_start(us_progress *p, const char *title, int total);
void us_progress_step(us_progress *p, const char *what);
void us_progress_end(us_progress *p);

#endif
