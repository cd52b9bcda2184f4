/* reference.c: float64 attention written from the definition, for the tests. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>

bool ref_visible(const us_attn_args *a, int64_t qpos, int64_t kpos)
{
    if (a->mask.kind == US_MASK_BIDIRECTIONAL) return true;
    if (kpos <= qpos) return true;
    if (a->mask.kind == US_MASK_CAUSAL_SPANS)
        for (int s = 0; s < a->mask.n_spans; s++) {
            us_span sp = a->mask.spans[s];
            if (qpos >= sp.start && qpos < sp.end && kpos >= sp.start && kpos < sp.end) return true;
        }
    return false;
}

void ref_attention_f64(const us_attn_args *a, double *o, double *lse)
{
    int64_t hq = a->q.shape[0], nq = a->q.shape[1], d = a->q.shape[2];
    int64_t hkv = a->k.shape[0], nk = a->k.shape[1];
    int64_t off = a->q_offset < 0 ? nk - nq : a->q_offset;
    double scale = a->scale > 0 ? a->scale : 1.0 / sqrt((double)d);
    double *s = malloc((size_t)nk * sizeof *s);
    for (int64_t h = 0; h < hq; h++) {
        int64_t kh = h / (hq / hkv);
        for (int64_t i = 0; i < nq; i++) {
            double mx = -INFINITY;
            for (int64_t j = 0; j < nk; j++) {
                if (!ref_visible(a, off + i, j)) {
                    s[j] = -INFINITY;
                    continue;
                }
                double acc = 0;
                for (int64_t c = 0; c < d; c++)
                    acc += (double)us_tensor_get(&a->q, h, i, c) * (double)us_tensor_get(&a->k, kh, j, c);
                s[j] = acc * scale;
                if (s[j] > mx) mx = s[j];
            }
            double sum = 0;
            for (int64_t j = 0; j < nk; j++) sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
            double *orow = o + (h * nq + i) * d;
            for (int64_t c = 0; c < d; c++) orow[c] = 0;
            for (int64_t j = 0; j < nk; j++) {
                if (s[j] == -INFINITY) continue;
                double p = exp(s[j] - mx) / sum;
                for (int64_t c = 0; c < d; c++) orow[c] += p * (double)us_tensor_get(&a->v, kh, j, c);
            }
            if (lse) lse[h * nq + i] = mx + log(sum);
        }
    }
    free(s);
}

double ref_rel_err(const float *x, const double *y, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double dlt = (double)x[i] - y[i];
        num += dlt * dlt;
        den += y[i] * y[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

void ref_fill_gaussian(float *x, int64_t n, uint64_t seed, float stddev)
{
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int t = 0; t < 2; t++) {
            st ^= st >> 12, st ^= st << 25, st ^= st >> 27;
            u[t] = ((double)((st * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2 * log(u[0])), th = 6.283185307179586 * u[1];
        x[i] = (float)(r * cos(th)) * stddev;
        if (i + 1 < n) x[i + 1] = (float)(r * sin(th)) * stddev;
    }
}
