/* select_ashape.c: placeholder until the baseline lands. */
#include "internal.h"

us_status us_select_ashape(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                       us_selection **out, us_error *err)
{
    (void)a, (void)g, (void)p, (void)out;
    return us_error_set(err, US_ERR_UNSUPPORTED, "method ashape is not implemented yet");
}
