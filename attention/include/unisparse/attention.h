/* unisparse/attention.h: dense and UniSparse prefill attention on the CPU.
 *
 * Usage (error handling elided):
 *
 *   us_attn_args a = us_attn_args_default();
 *   a.q = us_tensor_3d(q_data, US_BF16, Hq, N, d);    // [Hq, Nq, d]
 *   a.k = us_tensor_3d(k_data, US_BF16, Hkv, N, d);   // [Hkv, Nk, d]
 *   a.v = us_tensor_3d(v_data, US_BF16, Hkv, N, d);   // [Hkv, Nk, d]
 *   a.o = us_tensor_3d(o_data, US_F32, Hq, N, d);     // [Hq, Nq, d]
 *   us_error err;
 *   us_selection *sel = NULL;
 *   us_unisparse_params p = us_unisparse_params_default();
 *   if (us_select(US_METHOD_UNISPARSE, &a, &p, &sel, &err) != US_OK ||
 *       us_attention_sparse(&a, sel, &err) != US_OK) fprintf(stderr, "%s\n", err.msg);
 *   us_selection_free(&sel);
 *
 * Conventions. Positions: the Nq queries are positions q_offset .. q_offset+Nq-1 of the Nk keys
 * (chunked prefill; default q_offset = Nk - Nq). Masks: every supported mask gives each query a
 * visible key *prefix* [0, limit(q)], which is what lets one kernel serve them all:
 *   causal         limit(q) = q
 *   bidirectional  limit(q) = Nk - 1
 *   causal + spans limit(q) = max(q, end - 1) when q lies in span [start, end), else q
 * Every function returns US_OK (0) or a negative us_status and, when err is not NULL, a message
 * naming the parameter or input at fault. Nothing here prints or aborts.
 */
#ifndef UNISPARSE_ATTENTION_H
#define UNISPARSE_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    US_OK = 0,
    US_ERR_INVALID = -1,   /* a parameter or shape is out of range */
    US_ERR_NOMEM = -2,     /* an allocation failed */
    US_ERR_IO = -3,        /* a file could not be read or written */
    US_ERR_FORMAT = -4,    /* a file is malformed */
    US_ERR_UNSUPPORTED = -5, /* valid, but not implemented for this device or dtype */
    US_ERR_DEVICE = -6     /* a GPU call failed */
} us_status;

typedef struct {
    us_status code;
    char msg[512];
} us_error;

/* Formats into err (when not NULL) and returns code. */
us_status us_error_set(us_error *err, us_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *us_status_name(us_status code);

/* ---- tensors ---------------------------------------------------------------------------- */

typedef enum { US_F32 = 0, US_F16 = 1, US_BF16 = 2 } us_dtype;

size_t us_dtype_size(us_dtype t);
const char *us_dtype_name(us_dtype t);

/* A view: nothing is owned. Strides are in elements. Attention tensors are [heads, tokens, dim]
 * with a unit stride on dim. */
typedef struct {
    void *data;
    us_dtype dtype;
    int64_t shape[3];
    int64_t stride[3];
} us_tensor;

/* A contiguous [a, b, c] view of data. */
us_tensor us_tensor_3d(void *data, us_dtype dtype, int64_t a, int64_t b, int64_t c);

float us_f16_to_f32(uint16_t h);
uint16_t us_f32_to_f16(float f);
float us_bf16_to_f32(uint16_t h);
uint16_t us_f32_to_bf16(float f); /* round to nearest even */

/* Element (i, j, k) of t as float. */
float us_tensor_get(const us_tensor *t, int64_t i, int64_t j, int64_t k);

/* ---- masks ------------------------------------------------------------------------------ */

typedef enum { US_MASK_CAUSAL = 0, US_MASK_BIDIRECTIONAL = 1, US_MASK_CAUSAL_SPANS = 2 } us_mask_kind;

typedef struct {
    int64_t start, end; /* key positions [start, end), attended bidirectionally inside */
} us_span;

typedef struct {
    us_mask_kind kind;
    const us_span *spans; /* sorted, disjoint, non-empty, inside [0, Nk); US_MASK_CAUSAL_SPANS only */
    int n_spans;
} us_mask;

const char *us_mask_kind_name(us_mask_kind k);
/* Parses "causal", "bidirectional" or "spans"; returns -1 when unknown. */
int us_mask_kind_parse(const char *s);

/* ---- attention arguments ---------------------------------------------------------------- */

typedef struct {
    us_tensor q;      /* [Hq, Nq, d] */
    us_tensor k;      /* [Hkv, Nk, d], Hq a multiple of Hkv (GQA) */
    us_tensor v;      /* [Hkv, Nk, d] */
    us_tensor o;      /* [Hq, Nq, d], written */
    float *lse;       /* optional [Hq * Nq]: natural-log sum of exp(scaled scores), written */
    int64_t q_offset; /* -1: Nk - Nq */
    us_mask mask;
    float scale;      /* 0: 1 / sqrt(d) */
} us_attn_args;

us_attn_args us_attn_args_default(void);

/* Checks shapes, dtypes, strides, mask and offset. */
us_status us_attn_args_validate(const us_attn_args *a, us_error *err);

/* ---- selection: the kept key blocks per (head, query block) ------------------------------ */

/* One compact format shared by every selector and every kernel (CPU and GPU).
 * Rows are (selection head h, query block i), row r = h * n_qblocks + i. Selection head h covers
 * query heads [h * heads_per_row, (h + 1) * heads_per_row). Row r's kept key blocks are
 * indices[row_offset[r] .. row_offset[r] + counts[r]), sorted ascending and unique; the room
 * reserved for a row is its number of visible key blocks, so producers never need a host-side
 * prefix sum. */
typedef struct {
    int32_t block;         /* S: tokens per query block and per key block */
    int32_t n_heads;       /* selection heads */
    int32_t heads_per_row; /* query heads sharing one selection head */
    int32_t n_qblocks;     /* ceil(Nq / S) */
    int32_t n_kblocks;     /* ceil(Nk / S) */
    int64_t nq, nk, q_offset;
    int64_t *row_offset;   /* [n_heads * n_qblocks] */
    int32_t *counts;       /* [n_heads * n_qblocks] */
    int32_t *indices;      /* [row_offset[last] + capacity of last row] */
    int32_t *visible;      /* [n_qblocks]: visible key blocks (the row capacity) */
    /* The realised density: kept tiles over visible tiles, and kept token pairs over visible
     * token pairs (the latter is what the work scales with). Filled by us_selection_finish. */
    double density;
    double pair_density;
    double est_ms;         /* time the selector took */
} us_selection;

/* Allocates an empty selection (all counts 0) for the geometry of a. */
us_status us_selection_create(const us_attn_args *a, int block, int heads_per_row,
                              us_selection **out, us_error *err);
void us_selection_free(us_selection **sel);
/* Keeps every visible block: dense attention through the sparse kernel. */
us_status us_selection_dense(const us_attn_args *a, int block, us_selection **out, us_error *err);
/* Computes density and pair_density from counts and the mask. */
void us_selection_finish(us_selection *sel, const us_attn_args *a);
/* Every selection row of a query block holding a query at absolute position >= pos keeps every
 * visible key block (a dense tail: e.g. the last queries of a prompt, which the answer reads
 * directly); then us_selection_finish(sel, a). */
void us_selection_keep_all_from(us_selection *sel, const us_attn_args *a, int64_t pos);
/* Checks the invariants: indices sorted, unique, visible; sink and diagonal kept when asked. */
us_status us_selection_check(const us_selection *sel, const us_attn_args *a, int require_sink_diag,
                             us_error *err);

/* ---- methods and their parameters ------------------------------------------------------- */

typedef enum {
    US_METHOD_DENSE = 0,
    US_METHOD_UNISPARSE,
    US_METHOD_XATTENTION,
    US_METHOD_FLEXPREFILL,
    US_METHOD_MINFERENCE,
    US_METHOD_ASHAPE,
    US_METHOD_COUNT
} us_method;

const char *us_method_name(us_method m);
int us_method_parse(const char *s); /* -1 when unknown */

typedef struct {
    int block;          /* S, tokens per block: 64 or 128 (default 128) */
    int cq, ck;         /* sequence pooling of queries / keys into composite tokens (16, 1; see
                           bench/RESULTS.md for why keys stay at token granularity by default) */
    int ch;             /* query heads pooled per estimate; must divide Hq and either divide or be
                           a multiple of the GQA group size; 0 (default) = the group size, one
                           estimate per KV head shared by its query group */
    float tau;          /* cumulative estimated mass to keep, (0, 1] (0.98 for UniSparse); the
                           baselines use their own defaults (XAttention 0.9) */
    int sink_blocks;    /* leading key blocks always kept (1) */
    int local_blocks;   /* key blocks before the diagonal always kept (0) */
    int min_blocks;     /* floor on kept blocks per row (0) */
    int max_blocks;     /* ceiling on kept blocks per row, 0 = none; forced blocks always stay */
    int64_t min_tokens; /* below this many keys, keep everything (dense fallback) (0) */
    float gpu_min_gflop; /* GPU: a call whose dense causal attention is less work than this many GFLOP
                            runs dense (any sparse method): there the estimation's fixed cost cannot
                            pay (200: about 0.3 ms of an H100's dense kernel; bench/RESULTS.md) */
    int row_union;      /* UniSparse: 1 = each composite query row keeps blocks covering tau of its own
                           mass and the block row keeps the union; 0 = one cover of the block's
                           average, the paper's rule (1: steadier fidelity, see bench/RESULTS.md) */
    /* baselines */
    int xattn_stride;   /* XAttention antidiagonal stride, 8 or 16 (8) */
    float xattn_tau;    /* XAttention threshold (0.9) */
    float flex_gamma;   /* FlexPrefill coverage (0.9) */
    float flex_delta;   /* FlexPrefill sqrt(JS) threshold (0.1) */
    int flex_min_budget;/* FlexPrefill minimum tokens per row (512) */
    int flex_last_q;    /* FlexPrefill query sample (128) */
    int mi_last_q;      /* MInference query sample (64) */
    int mi_vertical;    /* MInference vertical columns (1000) */
    int mi_slash;       /* MInference slash diagonals (6096) */
    int ashape_local_tokens; /* A-shape local window in tokens (1024) */
} us_unisparse_params;

us_unisparse_params us_unisparse_params_default(void);
/* Every field range-checked against its documented range; the message names the field. */
us_status us_unisparse_params_validate(const us_unisparse_params *p, int head_dim, int hq, int hkv,
                                       us_error *err);

/* Runs method m's selector over a and returns a new selection in *out. */
us_status us_select(us_method m, const us_attn_args *a, const us_unisparse_params *p,
                    us_selection **out, us_error *err);

/* ---- kernels ---------------------------------------------------------------------------- */

/* Exact attention over the kept tiles of sel, online softmax, fp32 accumulation. A query row with
 * no visible kept key writes zeros and lse = -inf. */
us_status us_attention_sparse(const us_attn_args *a, const us_selection *sel, us_error *err);
/* Exact dense attention (every visible block kept). */
us_status us_attention_dense(const us_attn_args *a, us_error *err);
/* Selection and attention in one call. */
us_status us_attention(us_method m, const us_attn_args *a, const us_unisparse_params *p,
                       double *density_out, us_error *err);

/* Threads used by the CPU kernels: 0 = OpenMP's default. */
void us_set_num_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
