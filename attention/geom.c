/* geom.c: argument validation, masks as per-query visible prefixes, block geometry. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *us_mask_kind_name(us_mask_kind k)
{
    switch (k) {
    case US_MASK_CAUSAL: return "causal";
    case US_MASK_BIDIRECTIONAL: return "bidirectional";
    case US_MASK_CAUSAL_SPANS: return "spans";
    }
    return "?";
}

int us_mask_kind_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "causal")) return US_MASK_CAUSAL;
    if (!strcmp(s, "bidirectional")) return US_MASK_BIDIRECTIONAL;
    if (!strcmp(s, "spans") || !strcmp(s, "causal_spans")) return US_MASK_CAUSAL_SPANS;
    return -1;
}

us_attn_args us_attn_args_default(void)
{
    us_attn_args a;
    memset(&a, 0, sizeof a);
    a.q_offset = -1;
    a.mask.kind = US_MASK_CAUSAL;
    return a;
}

double us_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static us_status check_tensor(const us_tensor *t, const char *name, us_error *err)
{
    if (!t->data) return us_error_set(err, US_ERR_INVALID, "tensor %s: data is NULL", name);
    if (t->dtype != US_F32 && t->dtype != US_F16 && t->dtype != US_BF16)
        return us_error_set(err, US_ERR_INVALID, "tensor %s: unknown dtype %d", name, (int)t->dtype);
    for (int i = 0; i < 3; i++)
        if (t->shape[i] <= 0)
            return us_error_set(err, US_ERR_INVALID, "tensor %s: shape[%d] = %lld must be positive",
                                name, i, (long long)t->shape[i]);
    if (t->stride[2] != 1)
        return us_error_set(err, US_ERR_INVALID, "tensor %s: the head dim must be contiguous (stride %lld)",
                            name, (long long)t->stride[2]);
    if (t->stride[0] < 0 || t->stride[1] < 0)
        return us_error_set(err, US_ERR_INVALID, "tensor %s: negative stride", name);
    return US_OK;
}

us_status us_attn_args_validate(const us_attn_args *a, us_error *err)
{
    if (!a) return us_error_set(err, US_ERR_INVALID, "attention arguments are NULL");
    us_status s;
    if ((s = check_tensor(&a->q, "q", err)) || (s = check_tensor(&a->k, "k", err)) ||
        (s = check_tensor(&a->v, "v", err)) || (s = check_tensor(&a->o, "o", err)))
        return s;
    int64_t hq = a->q.shape[0], nq = a->q.shape[1], d = a->q.shape[2];
    int64_t hkv = a->k.shape[0], nk = a->k.shape[1];
    if (d % 8 != 0 || d > 1024)
        return us_error_set(err, US_ERR_INVALID, "head dim %lld: must be a multiple of 8, at most 1024",
                            (long long)d);
    if (a->k.shape[2] != d || a->v.shape[2] != d)
        return us_error_set(err, US_ERR_INVALID, "head dims differ: q %lld, k %lld, v %lld", (long long)d,
                            (long long)a->k.shape[2], (long long)a->v.shape[2]);
    if (a->v.shape[0] != hkv || a->v.shape[1] != nk)
        return us_error_set(err, US_ERR_INVALID, "v shape [%lld, %lld, %lld] differs from k [%lld, %lld, %lld]",
                            (long long)a->v.shape[0], (long long)a->v.shape[1], (long long)d,
                            (long long)hkv, (long long)nk, (long long)d);
    if (hq % hkv != 0)
        return us_error_set(err, US_ERR_INVALID, "query heads %lld are not a multiple of kv heads %lld",
                            (long long)hq, (long long)hkv);
    if (a->o.shape[0] != hq || a->o.shape[1] != nq || a->o.shape[2] != d)
        return us_error_set(err, US_ERR_INVALID, "o shape [%lld, %lld, %lld] must equal q's [%lld, %lld, %lld]",
                            (long long)a->o.shape[0], (long long)a->o.shape[1], (long long)a->o.shape[2],
                            (long long)hq, (long long)nq, (long long)d);
    if (nq > nk)
        return us_error_set(err, US_ERR_INVALID, "more queries (%lld) than keys (%lld)", (long long)nq,
                            (long long)nk);
    if (a->q_offset != -1 && (a->q_offset < 0 || a->q_offset > nk - nq))
        return us_error_set(err, US_ERR_INVALID, "q_offset %lld outside [0, %lld] (Nk - Nq)",
                            (long long)a->q_offset, (long long)(nk - nq));
    if (!(a->scale >= 0.0f) || isinf(a->scale))
        return us_error_set(err, US_ERR_INVALID, "scale %g must be finite and >= 0 (0 = 1/sqrt(d))",
                            (double)a->scale);
    switch (a->mask.kind) {
    case US_MASK_CAUSAL:
    case US_MASK_BIDIRECTIONAL: break;
    case US_MASK_CAUSAL_SPANS:
        if (a->mask.n_spans < 0 || (a->mask.n_spans > 0 && !a->mask.spans))
            return us_error_set(err, US_ERR_INVALID, "mask: %d spans but no span array", a->mask.n_spans);
        for (int i = 0; i < a->mask.n_spans; i++) {
            us_span sp = a->mask.spans[i];
            if (sp.start < 0 || sp.end > nk || sp.start >= sp.end)
                return us_error_set(err, US_ERR_INVALID, "mask span %d [%lld, %lld) is empty or outside [0, %lld)",
                                    i, (long long)sp.start, (long long)sp.end, (long long)nk);
            if (i > 0 && sp.start < a->mask.spans[i - 1].end)
                return us_error_set(err, US_ERR_INVALID, "mask span %d [%lld, %lld) overlaps or precedes span %d",
                                    i, (long long)sp.start, (long long)sp.end, i - 1);
        }
        break;
    default: return us_error_set(err, US_ERR_INVALID, "mask kind %d is unknown", (int)a->mask.kind);
    }
    if (a->lse && (const void *)a->lse == a->o.data)
        return us_error_set(err, US_ERR_INVALID, "lse aliases o");
    return US_OK;
}

us_status us_geom_init(us_geom *g, const us_attn_args *a, us_error *err)
{
    memset(g, 0, sizeof *g);
    us_status s = us_attn_args_validate(a, err);
    if (s) return s;
    g->hq = a->q.shape[0];
    g->nq = a->q.shape[1];
    g->d = a->q.shape[2];
    g->hkv = a->k.shape[0];
    g->nk = a->k.shape[1];
    g->group = g->hq / g->hkv;
    g->q_offset = a->q_offset < 0 ? g->nk - g->nq : a->q_offset;
    g->scale = a->scale > 0.0f ? a->scale : 1.0f / sqrtf((float)g->d);
    g->limit = malloc((size_t)g->nq * sizeof *g->limit);
    if (!g->limit) return us_error_set(err, US_ERR_NOMEM, "no memory for %lld query limits", (long long)g->nq);
    int sp = 0;
    for (int64_t i = 0; i < g->nq; i++) {
        int64_t pos = g->q_offset + i, lim = pos;
        if (a->mask.kind == US_MASK_BIDIRECTIONAL) {
            lim = g->nk - 1;
        } else if (a->mask.kind == US_MASK_CAUSAL_SPANS) {
            while (sp < a->mask.n_spans && a->mask.spans[sp].end <= pos) sp++;
            if (sp < a->mask.n_spans && a->mask.spans[sp].start <= pos) lim = a->mask.spans[sp].end - 1;
        }
        g->limit[i] = lim;
    }
    return US_OK;
}

void us_geom_free(us_geom *g)
{
    free(g->limit);
    g->limit = NULL;
}

int32_t us_geom_visible_blocks(const us_geom *g, int block, int64_t qblock)
{
    /* limits are non-decreasing in the query index, so the block's last query sees the most */
    int64_t last = us_min64((qblock + 1) * block, g->nq) - 1;
    return (int32_t)((g->limit[last] + block) / block);
}

void us_geom_diagonal_blocks(const us_geom *g, int block, int64_t qblock, int32_t *first, int32_t *last)
{
    int64_t p0 = g->q_offset + qblock * block;
    int64_t p1 = g->q_offset + us_min64((qblock + 1) * block, g->nq) - 1;
    *first = (int32_t)(p0 / block);
    *last = (int32_t)(p1 / block);
}
