/* stats.h: wall-clock time and medians for the tools and benchmarks. */
#ifndef UNISPARSE_STATS_H
#define UNISPARSE_STATS_H

/* Milliseconds on a monotonic clock. */
double us_wall_ms(void);
/* Median of x[0 .. n), n >= 1; sorts x in place. */
double us_median(double *x, int n);

#endif
