/* eval_plot.h: plot.png of `unisparse eval`: accuracy (left) and token agreement with dense (right)
 * against the realised attention density, one colour per method, one point per length (labelled),
 * a method's points joined in length order.
 *
 *   unsigned char *png;  size_t len;
 *   if (!us_eval_plot_png(rows, n_rows, &png, &len, &err)) { write it; free(png); }
 *
 * The points are the aggregate's summary rows: the "all" rows when there are several tasks, else the
 * one task's rows. Both axes run over [0, 1]. */
#ifndef UNISPARSE_EVAL_PLOT_H
#define UNISPARSE_EVAL_PLOT_H

#include "eval_report.h"

#include <stddef.h>

us_status us_eval_plot_png(const us_eval_row *rows, int n_rows, unsigned char **png, size_t *len, us_error *err);

#endif
