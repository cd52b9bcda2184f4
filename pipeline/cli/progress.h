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
/* Redraws at done of total (total may change: a batch whose work grows) with a note. */
void us_progress_set(us_progress *p, int done, int total, const char *what);
/* Clears the line so that a message can be printed; the next step or set draws the bar again. */
void us_progress_clear(const us_progress *p);
void us_progress_end(us_progress *p);

#endif
