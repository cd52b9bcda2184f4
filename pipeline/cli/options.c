/* options.c: the table-driven option parser (see options.h). */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_help(const us_option *opts, const char *usage, const char *summary)
{
    printf("usage: %s\n\n%s\n\noptions:\n", usage, summary);
    for (const us_option *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-24s %s", left, o->help);
        switch (o->type) {
        case US_OPT_INT: printf(" (default %d)", *(int *)o->dest); break;
        case US_OPT_INT64: printf(" (default %" PRId64 ")", *(int64_t *)o->dest); break;
        case US_OPT_FLOAT: printf(" (default %g)", (double)*(float *)o->dest); break;
        case US_OPT_STRING:
            if (*(const char **)o->dest) printf(" (default %s)", *(const char **)o->dest);
            break;
        case US_OPT_FLAG: break;
        }
        printf("\n");
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int set_value(const us_option *o, const char *val, const char *prog)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case US_OPT_INT: {
        long x = strtol(val, &end, 10);
        if (errno || end == val || *end || x < -2147483647L || x > 2147483647L) break;
        *(int *)o->dest = (int)x;
        return 0;
    }
    case US_OPT_INT64: {
        long long x = strtoll(val, &end, 10);
        if (errno || end == val || *end) break;
        *(int64_t *)o->dest = (int64_t)x;
        return 0;
    }
    case US_OPT_FLOAT: {
        float x = strtof(val, &end);
        if (errno || end == val || *end || !isfinite(x)) break;
        *(float *)o->dest = x;
        return 0;
    }
    case US_OPT_STRING: *(const char **)o->dest = val; return 0;
    case US_OPT_FLAG: break;
    }
    fprintf(stderr, "%s: option --%s: '%s' is not a valid %s\n", prog, o->name, val,
            o->type == US_OPT_FLOAT ? "number" : "integer");
    return 2;
}

int us_options_parse(const us_option *opts, int argc, char **argv, const char *usage, const char *summary,
                     char **positional, int max_positional, int *n_positional)
{
    const char *prog = argv[0];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help(opts, usage, summary);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (npos >= max_positional) {
                fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
                return 2;
            }
            positional[npos++] = argv[i];
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const us_option *o = opts;
        while (o->name && !(strlen(o->name) == len && !strncmp(o->name, name, len))) o++;
        if (!o->name) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, arg);
            return 2;
        }
        if (o->type == US_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: option --%s takes no value\n", prog, o->name);
                return 2;
            }
            *(bool *)o->dest = true;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "%s: option --%s needs a value (%s)\n", prog, o->name, o->metavar ? o->metavar : "");
            return 2;
        }
        if (set_value(o, val, prog)) return 2;
    }
    if (n_positional) *n_positional = npos;
    return -1;
}
