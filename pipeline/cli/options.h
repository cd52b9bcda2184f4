/* options.h: a table-driven long-option parser for the subcommands.
 *
 *   int n = 8; const char *path = NULL; bool json = false;
 *   const us_option opts[] = {
 *       {"n", US_OPT_INT, &n, "N", "sequence length"},
 *       {"qkv", US_OPT_STRING, &path, "FILE", "input safetensors"},
 *       {"json", US_OPT_FLAG, &json, NULL, "one JSON object per line"},
 *       {0}};
 *   int rc = us_options_parse(opts, argc, argv, "unisparse attn", "summary", &pos, &npos);
 *   if (rc >= 0) return rc;   // --help printed (0) or a bad option reported (2)
 *
 * Accepts --name VALUE and --name=VALUE; --help prints every option with its current value as the
 * default. Unknown options, missing or malformed values are errors (exit status 2).
 */
#ifndef UNISPARSE_CLI_OPTIONS_H
#define UNISPARSE_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { US_OPT_FLAG, US_OPT_INT, US_OPT_INT64, US_OPT_FLOAT, US_OPT_STRING } us_opt_type;

typedef struct {
    const char *name; /* without the leading dashes; NULL ends the table */
    us_opt_type type;
    void *dest;       /* bool, int, int64_t, float or const char * */
    const char *metavar;
    const char *help;
} us_option;

/* Returns -1 when parsing succeeded and the command should run, otherwise the exit status.
 * Positional arguments are collected in positional (up to max_positional; more is an error). */
int us_options_parse(const us_option *opts, int argc, char **argv, const char *usage, const char *summary,
                     char **positional, int max_positional, int *n_positional);

#endif
