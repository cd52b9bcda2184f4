/* select.c: method dispatch: a selector per method, one kernel for all. */
#include "internal.h"

us_status us_select(us_method m, const us_attn_args *a, const us_unisparse_params *p, us_selection **out,
                    us_error *err)
{
    *out = NULL;
    us_geom g;
    us_status s = us_geom_init(&g, a, err);
    if (s) return s;
    s = us_unisparse_params_validate(p, (int)g.d, (int)g.hq, (int)g.hkv, err);
    double t0 = us_now_ms();
    if (!s) {
        if (m == US_METHOD_DENSE || g.nk < p->min_tokens) {
            s = us_selection_dense(a, p->block, out, err);
        } else {
            switch (m) {
            case US_METHOD_UNISPARSE: s = us_select_unisparse(a, &g, p, out, err); break;
            case US_METHOD_XATTENTION: s = us_select_xattention(a, &g, p, out, err); break;
            case US_METHOD_FLEXPREFILL: s = us_select_flexprefill(a, &g, p, out, err); break;
            case US_METHOD_MINFERENCE: s = us_select_minference(a, &g, p, out, err); break;
            case US_METHOD_ASHAPE: s = us_select_ashape(a, &g, p, out, err); break;
            default: s = us_error_set(err, US_ERR_INVALID, "method %d is unknown", (int)m);
            }
        }
    }
    if (!s) {
        (*out)->est_ms = us_now_ms() - t0;
        us_selection_finish(*out, a);
    }
    us_geom_free(&g);
    return s;
}

us_status us_attention(us_method m, const us_attn_args *a, const us_unisparse_params *p, double *density_out,
                       us_error *err)
{
    us_selection *sel = NULL;
    us_status s = us_select(m, a, p, &sel, err);
    if (!s) s = us_attention_sparse(a, sel, err);
    if (!s && density_out) *density_out = sel->density;
    us_selection_free(&sel);
    return s;
}
