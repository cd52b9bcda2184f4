/* synthetic.c: structured synthetic attention inputs (see unisparse/synthetic.h).
 *
 * Scores are built in "scaled units": a structure adds sqrt(beta * sqrt(d)) * e to a query and
 * to a key along a unit direction e, so that it raises their scaled score q.k / sqrt(d) by about
 * beta whatever d is; splitting the amplitude evenly keeps the noise it picks up from the other
 * side's background smallest. Background q and k are Gaussian with std 0.7
 * (std 0.3); V is standard Gaussian. Per head:
 *   sinks     the first 4 keys, beta 12, seen by every query
 *   local     random Fourier features of a Gaussian kernel (length scale 32 tokens): the score
 *             of keys near the query rises smoothly to beta 8 at distance 0
 *   vertical  8 random key positions, beta 10, seen by every later query
 *   slash     the same features shifted by a per-head distance: keys that far back get beta 8
 *             (its own kind only: a second shift doubles the features' sidelobes)
 *   needles   2 per head: a 16-token key span and a later 64-token query span share a
 *             direction, beta 13; recorded in the needle list
 * mixed = sinks + local + vertical + needles.
 */
#include "unisparse/synthetic.h"

#include "internal.h"

#include <omp.h>
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

static double rng_uniform(rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

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
    for (int c = 0; c < d; c++)
        e[c] = (float)(e[c] / sqrt(n));
}

static void axpy(float *y, const float *x, float a, int d)
{
    for (int c = 0; c < d; c++)
        y[c] += a * x[c];
}

/* An orthonormal basis (modified Gram-Schmidt over Gaussian vectors), so that planted structures
 * do not leak into one another through chance overlaps of their directions. */
static void orthonormal_basis(rng *r, float *basis, int count, int d)
{
    for (int b = 0; b < count; b++) {
        float *e = basis + (int64_t)b * d;
        for (;;) {
            unit_vector(r, e, d);
            for (int o = 0; o < b; o++) {
                const float *u = basis + (int64_t)o * d;
                double dot = 0;
                for (int c = 0; c < d; c++)
                    dot += (double)e[c] * u[c];
                axpy(e, u, (float)-dot, d);
            }
            double n = 0;
            for (int c = 0; c < d; c++)
                n += (double)e[c] * e[c];
            if (n > 1e-6) {
                for (int c = 0; c < d; c++)
                    e[c] = (float)(e[c] / sqrt(n));
                break;
            }
        }
    }
}

/* Positional features: q_i gets sum over shifts of f(i - shift), k_j gets f(j), with
 * f(x) = [cos(w_f x), sin(w_f x)] on the feature directions and w_f ~ N(0, 1 / ls^2) (random Fourier
 * features of a Gaussian kernel), so that the scaled score of (i, j) is about
 * sum over shifts of beta * exp(-(i - shift - j)^2 / (2 ls^2)), plus sidelobes of std ~beta / sqrt(2F). */
static void add_position_features(rng *r, float *qh, float *kh, int64_t n, int d, int n_features, float beta, float ls,
                                  const int64_t *shifts, int n_shifts, const float *dirs)
{
    double w[64];
    for (int f = 0; f < n_features; f++)
        w[f] = rng_gauss(r) / ls;
    float amp = sqrtf(beta * sqrtf((float)d) / (float)n_features);
    for (int64_t i = 0; i < n; i++)
        for (int f = 0; f < n_features; f++) {
            const float *ec = dirs + (int64_t)(2 * f) * d, *es = dirs + (int64_t)(2 * f + 1) * d;
            for (int sh = 0; sh < n_shifts; sh++) {
                double pq = w[f] * (double)(i - shifts[sh]);
                axpy(qh + i * d, ec, amp * (float)cos(pq), d);
                axpy(qh + i * d, es, amp * (float)sin(pq), d);
            }
            if (kh) {
                axpy(kh + i * d, ec, amp * (float)cos(w[f] * (double)i), d);
                axpy(kh + i * d, es, amp * (float)sin(w[f] * (double)i), d);
            }
        }
}

us_status us_synthetic_qkv(us_synthetic_kind kind, int64_t n, int hq, int hkv, int d, uint64_t seed, float *q, float *k,
                           float *v, us_needle *needles, int *n_needles, us_error *err)
{
    if (kind < 0 || kind >= US_SYN_COUNT)
        return us_error_set(err, US_ERR_INVALID, "synthetic kind %d is unknown", (int)kind);
    if (n < 1 || hq < 1 || hkv < 1 || hq % hkv || d < 8 || d % 8)
        return us_error_set(err, US_ERR_INVALID,
                            "synthetic shape n=%lld heads=%d kv-heads=%d head-dim=%d: need n >= 1, heads a "
                            "multiple of kv-heads, head-dim a multiple of 8",
                            (long long)n, hq, hkv, d);
    if (!q || !k || !v) return us_error_set(err, US_ERR_INVALID, "synthetic: NULL output buffer");
    const int cap = n_needles ? *n_needles : 0;
    /* basis: 0 sink, 1 vertical, 2-3 needles, then 2 per positional feature */
    const int n_features = (d - 4) / 2 < 48 ? (d - 4) / 2 : 48;
    const size_t basis_floats = (size_t)(4 + 2 * n_features) * (size_t)d;
    float *all_dirs = malloc((size_t)omp_get_max_threads() * basis_floats * sizeof *all_dirs);
    if (!all_dirs) return us_error_set(err, US_ERR_NOMEM, "synthetic: no memory");
    rng r = {seed * 0xD1B54A32D192ED03ull + 7};
    const int group = hq / hkv;
    const float sd = sqrtf((float)d), noise = 0.3f;
    for (int64_t x = 0; x < (int64_t)hq * n * d; x++)
        q[x] = noise * rng_gauss(&r);
    for (int64_t x = 0; x < (int64_t)hkv * n * d; x++)
        k[x] = noise * rng_gauss(&r);
    for (int64_t x = 0; x < (int64_t)hkv * n * d; x++)
        v[x] = rng_gauss(&r);
    const bool all = kind == US_SYN_MIXED;
    const bool local = all || kind == US_SYN_LOCAL, slash = kind == US_SYN_SLASH;
    /* Structures are planted per KV head and seen by every query head of its group: each query
     * head replays the KV head's random stream, and only the first one writes the keys.
     * Every (KV head, query head) pair writes its own rows, so the pairs run in parallel. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < (kind == US_SYN_RANDOM ? 0 : hq); pair++) {
        {
            const int kvh = pair / group, qi = pair % group;
            float *dirs = all_dirs + (size_t)omp_get_thread_num() * basis_floats;
            rng hr = {seed * 0x9E3779B97F4A7C15ull + (uint64_t)kvh * 131 + 3};
            orthonormal_basis(&hr, dirs, 4 + 2 * n_features, d);
            float *qh = q + (int64_t)(kvh * group + qi) * n * d;
            float *kh = qi == 0 ? k + (int64_t)kvh * n * d : NULL;
            if (all || kind == US_SYN_SINKS) {
                float amp = sqrtf(12.0f * sd);
                for (int64_t i = 0; i < n; i++)
                    axpy(qh + i * d, dirs, amp, d);
                for (int64_t j = 0; j < us_min64(4, n) && kh; j++)
                    axpy(kh + j * d, dirs, amp, d);
            }
            if (all || kind == US_SYN_VERTICAL) {
                float amp = sqrtf(10.0f * sd);
                for (int64_t i = 0; i < n; i++)
                    axpy(qh + i * d, dirs + d, amp, d);
                for (int s = 0; s < 8; s++) {
                    int64_t p = 4 + (int64_t)(rng_uniform(&hr) * (double)us_max64(1, n - 4));
                    if (kh && p < n) axpy(kh + p * d, dirs + d, amp, d);
                }
            }
            if (local || slash) {
                int64_t shifts[2];
                int ns = 0;
                if (local) shifts[ns++] = 0;
                if (slash) shifts[ns++] = 256 + (int64_t)(rng_uniform(&hr) * (double)us_max64(1, n / 4));
                add_position_features(&hr, qh, kh, n, d, n_features, 8.0f, 32.0f, shifts, ns, dirs + 4 * d);
            }
            if ((all || kind == US_SYN_NEEDLES) && n >= 256) {
                float amp = sqrtf(13.0f * sd);
                for (int s = 0; s < 2; s++) {
                    const float *e = dirs + (2 + s) * d;
                    int64_t kp = (int64_t)(rng_uniform(&hr) * (double)(n / 2));
                    int64_t qp = n / 2 + (int64_t)(rng_uniform(&hr) * (double)(n / 2 - 64));
                    for (int64_t j = kp; j < us_min64(kp + 16, n) && kh; j++)
                        axpy(kh + j * d, e, amp, d);
                    for (int64_t i = qp; i < us_min64(qp + 64, n); i++)
                        axpy(qh + i * d, e, amp, d);
                    if (pair * 2 + s < cap) needles[pair * 2 + s] = (us_needle){pair, qp, kp};
                }
            }
        }
    }
    free(all_dirs);
    int found = (all || kind == US_SYN_NEEDLES) && n >= 256 ? 2 * hq : 0;
    if (n_needles) *n_needles = found < cap ? found : cap;
    return US_OK;
}
