/* params.c: method names, UniSparse and baseline parameters with their valid ranges. */
#include "internal.h"

#include <string.h>

static const char *const method_names[US_METHOD_COUNT] = {
    "dense", "unisparse", "xattention", "flexprefill", "minference", "ashape"};

const char *us_method_name(us_method m) { return m >= 0 && m < US_METHOD_COUNT ? method_names[m] : "?"; }

int us_method_parse(const char *s)
{
    for (int m = 0; s && m < US_METHOD_COUNT; m++)
        if (!strcmp(s, method_names[m])) return m;
    return -1;
}

us_unisparse_params us_unisparse_params_default(void)
{
    us_unisparse_params p = {
        .block = 128,
        .cq = 16,
        .ck = 1,
        .ch = 0,
        .tau = 0.98f,
        .sink_blocks = 1,
        .local_blocks = 0,
        .min_blocks = 0,
        .max_blocks = 0,
        .min_tokens = 0,
        .gpu_min_gflop = 200.0f,
        .row_union = 1,
        .xattn_stride = 8,
        .xattn_tau = 0.9f,
        .flex_gamma = 0.9f,
        .flex_delta = 0.1f,
        .flex_min_budget = 512,
        .flex_last_q = 128,
        .mi_last_q = 64,
        .mi_vertical = 1000,
        .mi_slash = 6096,
        .ashape_local_tokens = 1024,
    };
    return p;
}

#define RANGE(field, lo, hi)                                                                        \
    do {                                                                                            \
        if (!(p->field >= (lo) && p->field <= (hi)))                                                \
            return us_error_set(err, US_ERR_INVALID, "parameter %s = %g: must lie in [%g, %g]", #field, \
                                (double)p->field, (double)(lo), (double)(hi));                      \
    } while (0)

us_status us_unisparse_params_validate(const us_unisparse_params *p, int head_dim, int hq, int hkv,
                                       us_error *err)
{
    if (!p) return us_error_set(err, US_ERR_INVALID, "parameters are NULL");
    if (p->block != 64 && p->block != 128)
        return us_error_set(err, US_ERR_INVALID, "parameter block = %d: must be 64 or 128", p->block);
    RANGE(cq, 1, p->block);
    RANGE(ck, 1, p->block);
    if (p->block % p->cq)
        return us_error_set(err, US_ERR_INVALID, "parameter cq = %d: must divide block = %d", p->cq, p->block);
    if (p->block % p->ck)
        return us_error_set(err, US_ERR_INVALID, "parameter ck = %d: must divide block = %d", p->ck, p->block);
    RANGE(ch, 0, 1024);
    if (hq > 0 && hkv > 0 && p->ch > 0) {
        int group = hq / hkv;
        if (hq % p->ch || (group % p->ch && p->ch % group))
            return us_error_set(err, US_ERR_INVALID,
                                "parameter ch = %d: must divide Hq = %d and divide or be a multiple of the "
                                "GQA group %d",
                                p->ch, hq, group);
    }
    if (!(p->tau > 0.0f && p->tau <= 1.0f))
        return us_error_set(err, US_ERR_INVALID, "parameter tau = %g: must lie in (0, 1]", (double)p->tau);
    RANGE(sink_blocks, 0, 1 << 20);
    RANGE(local_blocks, 0, 1 << 20);
    RANGE(min_blocks, 0, 1 << 20);
    RANGE(max_blocks, 0, 1 << 20);
    if (p->max_blocks > 0 && p->max_blocks < p->min_blocks)
        return us_error_set(err, US_ERR_INVALID, "parameter max_blocks = %d is below min_blocks = %d",
                            p->max_blocks, p->min_blocks);
    RANGE(min_tokens, 0, (int64_t)1 << 40);
    RANGE(gpu_min_gflop, 0.0f, 1e12f);
    RANGE(row_union, 0, 1);
    if (p->xattn_stride != 4 && p->xattn_stride != 8 && p->xattn_stride != 16)
        return us_error_set(err, US_ERR_INVALID, "parameter xattn_stride = %d: must be 4, 8 or 16",
                            p->xattn_stride);
    if (!(p->flex_gamma > 0.0f && p->flex_gamma <= 1.0f))
        return us_error_set(err, US_ERR_INVALID, "parameter flex_gamma = %g: must lie in (0, 1]",
                            (double)p->flex_gamma);
    RANGE(flex_delta, 0.0f, 1.0f);
    if (!(p->xattn_tau > 0.0f && p->xattn_tau <= 1.0f))
        return us_error_set(err, US_ERR_INVALID, "parameter xattn_tau = %g: must lie in (0, 1]",
                            (double)p->xattn_tau);
    RANGE(flex_min_budget, 0, 1 << 30);
    RANGE(flex_last_q, 1, 1 << 20);
    RANGE(mi_last_q, 1, 1 << 20);
    RANGE(mi_vertical, 0, 1 << 30);
    RANGE(mi_slash, 0, 1 << 30);
    RANGE(ashape_local_tokens, 0, 1 << 30);
    (void)head_dim;
    return US_OK;
}
