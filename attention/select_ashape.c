/* select_ashape.c: the static A-shape baseline (sink + local window), a floor for the others.
 *
 * Every query block keeps max(1, sink_blocks) sink blocks, the diagonal, and the key blocks
 * holding any of the ashape_local_tokens positions before the block's first query: for query
 * block i with positions [p0, p1], the key blocks covering [p0 - L, p1] (rounding the window out
 * to whole blocks), all clamped to the visible blocks. The pattern ignores the inputs, so every
 * head gets the same rows. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

us_status us_select_ashape(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                           us_selection **out, us_error *err)
{
    const int S = p->block;
    us_status s = us_selection_create(a, S, 1, out, err);
    if (s) return s;
    us_selection *sel = *out;
    uint8_t *keep = malloc((size_t)sel->n_kblocks);
    if (!keep) {
        us_selection_free(out);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the A-shape rows");
    }
    for (int32_t i = 0; i < sel->n_qblocks; i++) {
        int32_t vis = sel->visible[i], d0, d1;
        us_geom_diagonal_blocks(g, S, i, &d0, &d1);
        memset(keep, 0, (size_t)vis);
        us_keep_sink_diagonal(keep, vis, d0, d1, p->sink_blocks);
        int64_t first = us_max64(0, g->q_offset + (int64_t)i * S - p->ashape_local_tokens) / S;
        for (int64_t j = first; j <= d1 && j < vis; j++) keep[j] = 1;
        for (int32_t h = 0; h < sel->n_heads; h++)
            us_selection_set_row(sel, (int64_t)h * sel->n_qblocks + i, keep, vis);
    }
    free(keep);
    return US_OK;
}
