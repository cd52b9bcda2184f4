/* synthetic.c: structured synthetic attention inputs (see unisparse/synthetic.h).
 *
 * Scores are built in "scaled units": a structure adds sqrt(beta * sqrt(d)) * e to a query and
 * to a key along a unit direction e, so that it raises their scaled score q.k / sqrt(d) by about
 * beta whatever d is; splitting the amplitude evenly keeps the noise it picks up from the other
 * side's background smallest. Background q and k are Gaussian with std 0.7
 * (scaled-score noise of std ~0.5); V is standard Gaussian. Per head:
 *   sinks     the first 4 keys, beta 9, seen by every query
 *   local     random Fourier features of an RBF kernel (length scale 48 tokens): the score of
 *             keys near the query rises smoothly to beta 9 at distance 0
 *   vertical  8 random key positions, beta 7, seen by every later query
 *   slash     the same features shifted by a per-head distance: keys that far back get beta 7
 *   needles   2 per head: a 16-token key span and a later 64-token query span share a
 *             direction, beta 12; recorded in the needle list
 */
#include "unisparse/synthetic.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[US_SYN_COUNT] = {"mixed", "sinks",   "local", "vertical",
                                                     "slash", "needles", "random"};

const char *us_synthetic_kind_name(us_synthetic_kind k)
{
    return k >= 0 && k < US_SYN_COUNT ? kind_names[k] : "?";
}

int us_synthetic_kind_parse(const char *s)
{
    for (int k = 0; s && k < US_SYN_COUNT; k++)
        if (!strcmp(s, kind_names[k])) return k;
    return -1;
}

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0; }

static float rng_gauss(rng *r)
{
    return (float)(sqrt(-2.0 * log(rng_uniform(r))) * cos(6.283185307179586 * rng_uniform(r)));
}

static void unit_vector(rng *r, float *e, int d)
{
    double n = 0;
    for (int c = 0; c < d; c++) {
        e[c] = rng_gauss(r);
        n += (double)e[c] * e[c];
    }
    for (int c = 0; c < d; c++) e[c] = (float)(e[c] / sqrt(n));
}

static void axpy(float *y, const float *x, float a, int d)
{
    for (int c = 0; c < d; c++) y[c] += a * x[c];
}

#define N_FEATURES 16 /* random Fourier features for the local and slash structures */

/* Adds RBF-like positional features: q_i gets f(i - shift), k_j gets f(j), so that their scaled
 * score is about beta * exp(-(i - shift - j)^2 / (2 ls^2)). The features live on random unit
 * directions E[2 * N_FEATURES]. */
static void add_position_features(rng *r, float *qh, float *kh, int64_t n, int d, float beta, float ls,
                                  int64_t shift, const float *dirs)
{
    double w[N_FEATURES];
    for (int f = 0; f < N_FEATURES; f++) w[f] = rng_gauss(r) / ls;
    float qa = sqrtf(beta * sqrtf((float)d) / (float)N_FEATURES), ka = qa;
    for (int64_t i = 0; i < n; i++)
        for (int f = 0; f < N_FEATURES; f++) {
            double pq = w[f] * (double)(i - shift), pk = w[f] * (double)i;
            axpy(qh + i * d, dirs + (2 * f) * d, qa * (float)cos(pq), d);
            axpy(qh + i * d, dirs + (2 * f + 1) * d, qa * (float)sin(pq), d);
            axpy(kh + i * d, dirs + (2 * f) * d, ka * (float)cos(pk), d);
            axpy(kh + i * d, dirs + (2 * f + 1) * d, ka * (float)sin(pk), d);
        }
}

us_status us_synthetic_qkv(us_synthetic_kind kind, int64_t n, int hq, int hkv, int d, uint64_t seed, float *q,
                           float *k, float *v, us_needle *needles, int *n_needles, us_error *err)
{
    if (kind < 0 || kind >= US_SYN_COUNT)
        return us_error_set(err, US_ERR_INVALID, "synthetic kind %d is unknown", (int)kind);
    if (n < 1 || hq < 1 || hkv < 1 || hq % hkv || d < 8 || d % 8)
        return us_error_set(err, US_ERR_INVALID,
                            "synthetic shape n=%lld heads=%d kv-heads=%d head-dim=%d: need n >= 1, heads a "
                            "multiple of kv-heads, head-dim a multiple of 8",
                            (long long)n, hq, hkv, d);
    if (!q || !k || !v) return us_error_set(err, US_ERR_INVALID, "synthetic: NULL output buffer");
    int cap = n_needles ? *n_needles : 0, found = 0;
    float *dirs = malloc((size_t)(2 * N_FEATURES + 4) * (size_t)d * sizeof *dirs);
    if (!dirs) return us_error_set(err, US_ERR_NOMEM, "synthetic: no memory");
    rng r = {seed * 0xD1B54A32D192ED03ull + 7};
    const int group = hq / hkv;
    const float sd = sqrtf((float)d), noise = 0.7f;
    for (int64_t x = 0; x < (int64_t)hq * n * d; x++) q[x] = noise * rng_gauss(&r);
    for (int64_t x = 0; x < (int64_t)hkv * n * d; x++) k[x] = noise * rng_gauss(&r);
    for (int64_t x = 0; x < (int64_t)hkv * n * d; x++) v[x] = rng_gauss(&r);
    bool all = kind == US_SYN_MIXED;
    /* Structures are planted per KV head and seen by every query head of its group. */
    for (int kvh = 0; kvh < hkv && kind != US_SYN_RANDOM; kvh++) {
        float *kh = k + (int64_t)kvh * n * d;
        float *e = dirs + 2 * N_FEATURES * d;
        for (int qi = 0; qi < group; qi++) {
            /* the same per-KV-head random stream for each query head of the group */
            rng hr = {seed * 0x9E3779B97F4A7C15ull + (uint64_t)kvh * 131 + 3};
            float *qh = q + (int64_t)(kvh * group + qi) * n * d;
            float *kdst = qi == 0 ? kh : NULL; /* keys are planted once */
            if (all || kind == US_SYN_SINKS) {
                unit_vector(&hr, e, d);
                for (int64_t i = 0; i < n; i++) axpy(qh + i * d, e, sqrtf(9.0f * sd), d);
                for (int64_t j = 0; j < us_min64(4, n) && kdst; j++) axpy(kdst + j * d, e, sqrtf(9.0f * sd), d);
            }
            if (all || kind == US_SYN_LOCAL) {
                for (int f = 0; f < 2 * N_FEATURES; f++) unit_vector(&hr, dirs + f * d, d);
                float *kscratch = kdst ? kdst : malloc((size_t)(n * d) * sizeof *kscratch);
                if (!kscratch) break;
                if (!kdst) memset(kscratch, 0, (size_t)(n * d) * sizeof *kscratch);
                add_position_features(&hr, qh, kscratch, n, d, 9.0f, 48.0f, 0, dirs);
                if (!kdst) free(kscratch);
            }
            if (all || kind == US_SYN_VERTICAL) {
                unit_vector(&hr, e, d);
                for (int64_t i = 0; i < n; i++) axpy(qh + i * d, e, sqrtf(7.0f * sd), d);
                for (int s = 0; s < 8; s++) {
                    int64_t p = 4 + (int64_t)(rng_uniform(&hr) * (double)us_max64(1, n - 4));
                    if (kdst && p < n) axpy(kdst + p * d, e, sqrtf(7.0f * sd), d);
                }
            }
            if (all || kind == US_SYN_SLASH) {
                int64_t shift = 256 + (int64_t)(rng_uniform(&hr) * (double)us_max64(1, n / 4));
                for (int f = 0; f < 2 * N_FEATURES; f++) unit_vector(&hr, dirs + f * d, d);
                float *kscratch = kdst ? kdst : malloc((size_t)(n * d) * sizeof *kscratch);
                if (!kscratch) break;
                if (!kdst) memset(kscratch, 0, (size_t)(n * d) * sizeof *kscratch);
                add_position_features(&hr, qh, kscratch, n, d, 7.0f, 8.0f, shift, dirs);
                if (!kdst) free(kscratch);
            }
            if ((all || kind == US_SYN_NEEDLES) && n >= 256) {
                for (int s = 0; s < 2; s++) {
                    unit_vector(&hr, e, d);
                    int64_t kp = (int64_t)(rng_uniform(&hr) * (double)(n / 2));
                    int64_t qp = n / 2 + (int64_t)(rng_uniform(&hr) * (double)(n / 2 - 64));
                    for (int64_t j = kp; j < us_min64(kp + 16, n) && kdst; j++) axpy(kdst + j * d, e, sqrtf(12.0f * sd), d);
                    for (int64_t i = qp; i < us_min64(qp + 64, n); i++) axpy(qh + i * d, e, sqrtf(12.0f * sd), d);
                    if (found < cap) needles[found] = (us_needle){kvh * group + qi, qp, kp};
                    found++;
                }
            }
        }
    }
    free(dirs);
    if (n_needles) *n_needles = found < cap ? found : cap;
    return US_OK;
}
