/* internal.h: helpers shared by the attention library's files; not installed. */
#ifndef UNISPARSE_ATTENTION_INTERNAL_H
#define UNISPARSE_ATTENTION_INTERNAL_H

#include "unisparse/attention.h"
#include "unisparse/fast_exp2.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define US_LOG2E 1.4426950408889634f
#define US_LN2 0.6931471805599453f

static inline int64_t us_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t us_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t us_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Geometry of one attention call, derived once from validated arguments. */
typedef struct {
    int64_t hq, hkv, group, nq, nk, d, q_offset;
    float scale;
    /* limit[i]: last key visible to query i (query index, not position); -1 if none. */
    int64_t *limit;
} us_geom;

/* Fills g from validated a; allocates g->limit. */
us_status us_geom_init(us_geom *g, const us_attn_args *a, us_error *err);
void us_geom_free(us_geom *g);

/* Visible key-block range of query block i (tokens [i*S, min((i+1)*S, nq))):
 * key blocks 0 .. visible-1 contain at least one visible key for some query of the block. */
int32_t us_geom_visible_blocks(const us_geom *g, int block, int64_t qblock);
/* The key blocks holding the positions of query block i itself: [*first, *last]. */
void us_geom_diagonal_blocks(const us_geom *g, int block, int64_t qblock, int32_t *first,
                             int32_t *last);

/* Converts row (h, j) of t to f32, multiplied by mul. */
void us_tensor_row_to_f32(const us_tensor *t, int64_t h, int64_t j, float mul, float *row);
/* Converts head h of t ([H, N, d]) to contiguous f32 rows, each multiplied by mul. */
void us_tensor_head_to_f32(const us_tensor *t, int64_t h, float mul, float *dst);

/* Milliseconds on a monotonic clock. */
double us_now_ms(void);

/* Marks (ORs into keep[0 .. visible)) the forced blocks (sink, diagonal, local window) and then
 * the visible blocks of importance[0 .. visible) in decreasing order until the marked importance
 * reaches tau (importance sums to 1 over the visible blocks), within the min/max floors.
 * cand holds 2 * visible ints of scratch. */
void us_mark_row_by_mass(const float *importance, int32_t visible, int32_t diag_first, int32_t diag_last, float tau,
                         const us_unisparse_params *p, uint8_t *keep, int32_t *cand);
/* Keeps, in row r of sel, exactly the blocks us_mark_row_by_mass marks. scratch holds
 * 3 * n_kblocks ints. */
void us_select_row_by_mass(us_selection *sel, int64_t row, const float *importance, int32_t visible,
                           int32_t diag_first, int32_t diag_last, float tau,
                           const us_unisparse_params *p, int32_t *scratch);

/* Block importance from pooled scores, the mechanism UniSparse, XAttention and FlexPrefill's
 * query-aware mode share. For selection head h and query block i it scores the composite queries
 * of the block against every visible composite key, softmaxes each row in fp32, and sums the mass
 * per key block, normalised to 1. The pooled tensors come from a pooling callback. */
typedef struct {
    int64_t n_heads;  /* estimation heads */
    int64_t nqc, nkc; /* composite queries / keys */
    int64_t dim;      /* composite vector length */
    int cq, ck;       /* tokens per composite query / key */
    const float *qc;  /* [n_heads, nqc, dim], already multiplied by scale * log2(e) */
    const float *kc;  /* [n_heads, nkc, dim] */
    const float *const *khead; /* optional: head h's composite keys at khead[h] (nkc rows of dim),
                                  e.g. the f32 keys themselves when ck = 1, used in place */
} us_pooled;

/* importance: [n_kblocks] for (h, i). work: (S / cq) * nkc floats. row_mass (optional):
 * [S / cq][n_kblocks], each composite row's own block masses (each row sums to 1). Returns the
 * number of composite rows of the block. */
int us_pooled_block_importance(const us_pooled *pl, const us_geom *g, int block, int64_t h, int64_t qblock,
                               float *work, float *importance, float *row_mass);

/* The same for nh heads h0 .. h0 + nh - 1 that score against the same keys (khead[h0], or kc of
 * h0): their composite rows go through one product, so the keys, the memory-bound operand at
 * long context, are read once for all of them. qbuf: nh * (S / cq) * dim floats (unused when
 * nh = 1); work: nh * (S / cq) * nkc; importance: [nh][n_kblocks]; row_mass: [nh][S / cq][n_kblocks]. */
int us_pooled_block_importance_heads(const us_pooled *pl, const us_geom *g, int block, int64_t h0, int64_t nh,
                                     int64_t qblock, float *qbuf, float *work, float *importance, float *row_mass);

/* The two steps of the above, for the composite rows of query blocks [i0, i1) at once.
 * us_pooled_scores: one product of those rows (nh heads sharing keys, rows ordered head-major)
 * against the keys visible to the last of them; qbuf: nh * rows * dim floats (unused when nh = 1);
 * z: nh * rows * (returned column count) floats. us_pooled_block_mass: the masses of query block
 * i in [i0, i1) from those scores (overwritten by softmax numerators), as the function above. */
int64_t us_pooled_scores(const us_pooled *pl, const us_geom *g, int block, int64_t h0, int64_t nh, int64_t i0,
                         int64_t i1, float *qbuf, float *z);
int us_pooled_block_mass(const us_pooled *pl, const us_geom *g, int block, int64_t nh, int64_t i0, int64_t i1,
                         int64_t i, float *z, int64_t ldz, float *importance, float *row_mass);

/* Selectors, one file each. */
us_status us_select_unisparse(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                              us_selection **out, us_error *err);
us_status us_select_xattention(const us_attn_args *a, const us_geom *g,
                               const us_unisparse_params *p, us_selection **out, us_error *err);
us_status us_select_flexprefill(const us_attn_args *a, const us_geom *g,
                                const us_unisparse_params *p, us_selection **out, us_error *err);
us_status us_select_minference(const us_attn_args *a, const us_geom *g,
                               const us_unisparse_params *p, us_selection **out, us_error *err);
us_status us_select_ashape(const us_attn_args *a, const us_geom *g, const us_unisparse_params *p,
                           us_selection **out, us_error *err);

/* ---- pieces the baseline selectors share (last_queries.c) ------------------------------------ */

/* Marks in keep[0, visible) the blocks every baseline keeps: max(1, sink_blocks) sink blocks and
 * the diagonal blocks [diag_first, diag_last] of the row (clamped to the visible ones). */
void us_keep_sink_diagonal(uint8_t *keep, int32_t visible, int32_t diag_first, int32_t diag_last,
                           int sink_blocks);
/* Adds the most recent unkept visible blocks (highest index first) until min_count are kept or
 * the row is full. Returns the kept count. */
int32_t us_keep_recent(uint8_t *keep, int32_t visible, int32_t min_count);
/* Writes row r of sel (ascending indices) from keep[0, visible). */
void us_selection_set_row(us_selection *sel, int64_t row, const uint8_t *keep, int32_t visible);

/* A score and where it came from, for sorting. */
typedef struct {
    float score;
    int32_t index;
} us_scored;

/* Marks in chosen[0, n) (cleared first) the largest positive entries of score[0, n), in decreasing
 * order, until max_count are chosen or, when gamma < 1, their sum reaches gamma times the sum of
 * all positive entries. scratch: n entries. Returns how many were chosen. */
int64_t us_top_by_mass(const float *score, int64_t n, int64_t max_count, float gamma, us_scored *scratch,
                       uint8_t *chosen);

/* Per-thread workspace of the vertical-slash estimators (MInference, FlexPrefill): the exact
 * attention of the last n queries of one query head, its vertical (per key) and slash (per
 * diagonal offset pos(query) - key) sums, the chosen columns and diagonals, and their rounding to
 * key blocks. */
typedef struct {
    int64_t n;          /* sampled queries: indices nq - n .. nq - 1 */
    int64_t ncols;      /* keys visible to the last sampled query: limit[nq - 1] + 1 */
    int64_t nk, nkb, d; /* keys, key blocks, head dim */
    int block;
    float *q;           /* [n, d] sampled queries times scale * log2(e) */
    float *k;           /* [nk, d] keys of kv head k_head in f32 */
    int64_t k_head;     /* -1 until keys are loaded */
    float *prob;        /* [n, ncols] softmax rows, 0 past each row's visible prefix */
    float *vertical;    /* [nk]: summed probability per key */
    float *slash;       /* [2 nk - 1]: summed probability per offset o, at o + nk - 1 */
    us_scored *sorted;  /* [2 nk] sort scratch */
    uint8_t *col_chosen;  /* [nk] */
    uint8_t *diag_chosen; /* [2 nk - 1] */
    int64_t *first_col;   /* [nkb]: smallest chosen column of each key block, INT64_MAX if none */
    int32_t *diag_prefix; /* [2 nk]: chosen offsets below each index */
    uint8_t *keep;        /* [nkb] row scratch for the caller */
} us_vs_work;

us_status us_vs_work_init(us_vs_work *w, const us_geom *g, int block, int64_t n_sample, us_error *err);
void us_vs_work_free(us_vs_work *w);
/* Exact softmax attention (g->scale, mask-aware) of the sampled queries of query head h against
 * every visible key, then the vertical and slash sums. */
void us_vs_work_scores(us_vs_work *w, const us_attn_args *a, const us_geom *g, int64_t h);
/* Chooses columns and diagonals (us_top_by_mass over vertical and slash) and rounds them to
 * blocks. */
void us_vs_work_choose(us_vs_work *w, int64_t max_vertical, int64_t max_slash, float gamma);
/* Marks in keep[0, visible) the blocks of query block i that contain a chosen column visible to
 * the block or whose rectangle is crossed by a chosen diagonal. */
void us_vs_work_mark_row(const us_vs_work *w, const us_geom *g, int64_t qblock, uint8_t *keep);

#endif
