/* plan.h: the device-side plan shared by the CUDA files (internal). */
#ifndef UNISPARSE_CUDA_PLAN_H
#define UNISPARSE_CUDA_PLAN_H

#include "unisparse_cuda.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

/* CUDA errors carry the statement, file and line. */
#define US_CUDA_TRY(err, call)                                                                                 \
    do {                                                                                                       \
        cudaError_t e_ = (call);                                                                               \
        if (e_ != cudaSuccess)                                                                                 \
            return us_error_set((err), e_ == cudaErrorMemoryAllocation ? US_ERR_NOMEM : US_ERR_DEVICE,         \
                                "%s failed: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)

struct us_cuda_plan {
    us_method method;
    us_cuda_kernel kernel;     /* which attention kernel runs (AUTO by default) */
    us_unisparse_params p;
    int block;                 /* S */
    int hq, hkv, group, d;
    int64_t nq, nk, q_offset;
    float scale;
    us_dtype dtype;
    /* selection, in the us_selection layout */
    int n_heads, heads_per_row, n_qblocks, n_kblocks;
    int64_t n_indices;
    int64_t last_limit;        /* the last query's visible limit (sizes FlexPrefill's sample) */
    double dense_gflop;        /* 4 Hq d x visible (query, key) pairs: the dense kernel's work */
    bool falls_back;           /* a sparse method that runs dense here (min_tokens, gpu_min_gflop) */
    int32_t *d_limit;          /* [nq]: last visible key of each query */
    int64_t *d_row_offset;     /* [n_heads * n_qblocks] */
    int32_t *d_visible;        /* [n_qblocks] */
    int32_t *d_counts;         /* [n_heads * n_qblocks] */
    int32_t *d_indices;        /* [n_indices] */
    /* host copies of the geometry (for us_cuda_plan_selection) */
    int64_t *h_row_offset;
    int32_t *h_visible;
    /* estimation scratch, owned by the estimator */
    void *est_scratch;
    size_t est_scratch_bytes;
};

/* Fills every visible block of every row (dense); queued on stream. */
us_status us_cuda_select_dense(us_cuda_plan *plan, cudaStream_t stream, us_error *err);

/* UniSparse estimation and selection on the device (estimate_unisparse.cu). Sizes and allocates
 * its scratch on first use (plan->est_scratch), queues everything on stream, no host sync after
 * the first call. */
us_status us_cuda_select_unisparse(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err);

/* The baselines' estimation and selection on the device, same contract as the UniSparse one
 * (estimate_xattention.cu, estimate_flexprefill.cu); plans with one selection head per query head. */
us_status us_cuda_select_xattention(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err);
us_status us_cuda_select_flexprefill(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err);

/* The block-sparse attention kernels: mma.sync (flash_sparse.cu, every supported call) and the
 * Hopper wgmma/TMA one (flash_wgmma.cu), which covers the calls us_cuda_wgmma_covers accepts. */
us_status us_cuda_attention_sparse(const us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream,
                                   us_error *err);
bool us_cuda_wgmma_covers(const us_cuda_plan *plan, const us_attn_args *a);
us_status us_cuda_attention_wgmma(const us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err);

#endif
