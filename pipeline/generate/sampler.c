/* sampler.c: greedy argmax, or softmax(logits / T) cut to the top-k and then to the smallest prefix
 * with mass >= top_p, sampled with splitmix64. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#define MAX_SAMPLE_VOCAB 262144 /* never sample the image soft token row or beyond */

typedef struct {
    float p;
    int32_t id;
} cand;

struct us_sampler {
    int vocab;
    float temperature, top_p;
    int top_k;
    uint64_t rng;
    cand *cands; /* (vocab) when sampling */
};

us_status us_sampler_create(int vocab, float temperature, int top_k, float top_p, uint64_t seed, us_sampler **out,
                            us_error *err)
{
    *out = NULL;
    if (vocab < 1) return us_error_set(err, US_ERR_INVALID, "vocab %d must be >= 1", vocab);
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return us_error_set(err, US_ERR_INVALID, "temperature %g must be a finite value >= 0", (double)temperature);
    if (top_k < 0) return us_error_set(err, US_ERR_INVALID, "top_k %d must be >= 0", top_k);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return us_error_set(err, US_ERR_INVALID, "top_p %g must lie in (0, 1]", (double)top_p);
    us_sampler *s = calloc(1, sizeof *s);
    if (!s) return us_error_set(err, US_ERR_NOMEM, "no memory for the sampler");
    s->vocab = vocab < MAX_SAMPLE_VOCAB ? vocab : MAX_SAMPLE_VOCAB;
    s->temperature = temperature, s->top_k = top_k, s->top_p = top_p, s->rng = seed;
    if (temperature > 0.0f && !(s->cands = malloc((size_t)s->vocab * sizeof *s->cands))) {
        free(s);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the sampler");
    }
    *out = s;
    return US_OK;
}

void us_sampler_free(us_sampler **ps)
{
    if (!ps || !*ps) return;
    free((*ps)->cands);
    free(*ps);
    *ps = NULL;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* descending probability, ties by ascending id: the order is deterministic */
static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

int32_t us_sampler_pick(us_sampler *s, const float *logits)
{
    const int V = s->vocab;
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (!(s->temperature > 0.0f)) return best;
    cand *c = s->cands;
    for (int i = 0; i < V; i++) c[i] = (cand){(logits[i] - logits[best]) / s->temperature, i};
    qsort(c, (size_t)V, sizeof *c, cand_desc);
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (c[i].p = expf(c[i].p));
    if (s->top_p < 1.0f) {
        double acc = 0.0;
        int m = 0;
        while (m < n && acc < s->top_p * sum) acc += c[m++].p;
        n = m > 0 ? m : 1;
        sum = acc > 0.0 ? acc : c[0].p;
    }
    const double u = (double)(splitmix64(&s->rng) >> 11) * 0x1.0p-53 * sum;
    double acc = 0.0;
    for (int i = 0; i < n; i++)
        if ((acc += c[i].p) > u) return c[i].id;
    return c[n - 1].id;
}
