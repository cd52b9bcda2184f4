/* eval_metrics.c: see eval_metrics.h. */
#include "eval_metrics.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

int us_eval_contains_nocase(const char *hay, const char *needle)
{
    const size_t n = strlen(needle);
    if (n == 0) return 1;
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

double us_eval_score_all(const char *answer, const char *const *expected, int n)
{
    if (n <= 0) return 1.0;
    int found = 0;
    for (int i = 0; i < n; i++)
        found += us_eval_contains_nocase(answer ? answer : "", expected[i]);
    return (double)found / (double)n;
}

int us_eval_common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

double us_eval_agreement(const int32_t *ref, int nref, const int32_t *x, int nx)
{
    if (nref <= 0) return nx <= 0 ? 1.0 : 0.0;
    return (double)us_eval_common_prefix(ref, nref, x, nx) / (double)nref;
}

static double logsumexp(const float *x, int64_t n)
{
    double m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    if (!isfinite(m)) return m;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

double us_eval_kl_logits(const float *p, const float *q, int64_t n)
{
    const double lp = logsumexp(p, n), lq = logsumexp(q, n);
    double kl = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double a = (double)p[i] - lp;
        if (a == -INFINITY) continue; /* P_i = 0 contributes nothing */
        /* (p_i - lp) - (q_i - lq), written so that identical inputs give exactly 0 per term */
        kl += exp(a) * (((double)p[i] - (double)q[i]) + (lq - lp));
    }
    return kl < 0.0 ? 0.0 : kl; /* NaN stays NaN */
}
