/* estimate_common.cuh: device helpers shared by the estimators (UniSparse, XAttention,
 * FlexPrefill) and the block-selection rule they all end with (select_mass.cu).
 *
 * The selection rule consumes per-(composite row, key block) base-2 partials (max m, sum of
 * 2^(z - m)) laid out like the selection itself, plus each composite row's (max, sum) per key
 * chunk, and reproduces us_select_row_by_mass (attention/selection.c) on the device. */
#ifndef UNISPARSE_ESTIMATE_COMMON_CUH
#define UNISPARSE_ESTIMATE_COMMON_CUH

#include "plan.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace us_est {

constexpr int kSelThreads = 256;
constexpr int kMaxSort = 16384; /* visible key blocks a selection row may have */

template <typename T> struct Conv;
template <> struct Conv<__nv_bfloat16> {
    static __device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float x) { return __float2bfloat16_rn(x); }
};
template <> struct Conv<__half> {
    static __device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half from_f(float x) { return __float2half_rn(x); }
};

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared; src_bytes 0 writes zeros (src must still be a valid address). */
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

template <typename T> __device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void mma16816<__nv_bfloat16>(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma16816<__half>(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Byte offset of 16-byte chunk c of row r in a [rows, D] tile of 2-byte elements, XOR-swizzled so
 * that the 8 rows an ldmatrix phase reads hit 8 different bank groups. */
template <int D> __device__ __forceinline__ uint32_t swz(int r, int c)
{
    return (uint32_t)(r * (D * 2) + ((c ^ (r & 7)) << 4));
}

/* Visible composite keys of composite query u (0 past the last one). */
__device__ __forceinline__ int row_nv(const int32_t *__restrict__ limit, int u, int nqc, int cq, int ck, int64_t nq,
                                      int nkc)
{
    if (u < 0 || u >= nqc) return 0;
    int64_t last = (int64_t)(u + 1) * cq;
    if (last > nq) last = nq;
    int64_t nv = (int64_t)limit[last - 1] / ck + 1;
    return (int)(nv < nkc ? nv : nkc);
}

/* 2^x, ~2 ulp; flushes results below 2^-126 to zero as the CPU's us_exp2f does; 2^-inf = 0. */
__device__ __forceinline__ float ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* (max, sum of exp2(x - max)) pairs, merged. */
__device__ __forceinline__ float2 ms_merge(float2 a, float2 b)
{
    float m = fmaxf(a.x, b.x);
    if (m == -INFINITY) return make_float2(-INFINITY, 0.0f);
    return make_float2(m, a.y * ex2(a.x - m) + b.y * ex2(b.x - m));
}

struct SelectParams {
    const float2 *part, *rowpart;
    int n_chunks, chunk;
    const int32_t *limit;
    const int64_t *row_offset;
    const int32_t *visible;
    int32_t *counts, *indices;
    int n_qblocks, nqc, nkc, cq, ck, R, G, S;
    int64_t nq, q_offset;
    float tau;
    int sink_blocks, local_blocks, min_blocks, max_blocks;
    int row_union; /* 1: one cover per composite row, kept blocks = their union */
    int warp_covers; /* set by launch_select_by_mass: row-union covers one warp each (narrow rows) */
    /* optional: rows of selection head e are handled only when mode[e] == mode_want (FlexPrefill
     * runs this rule for its query-aware heads and another kernel for the others) */
    const int32_t *mode;
    int mode_want;
};

/* Exclusive block scan of v; *total (all threads) gets the block sum. sh: 32 entries. */
template <typename V> __device__ V block_excl_scan(V v, V *sh, V *total)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    V x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        V y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) sh[warp] = x;
    __syncthreads();
    if (warp == 0) {
        V w = lane < nw ? sh[lane] : (V)0;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            V y = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += y;
        }
        sh[lane] = w;
    }
    __syncthreads();
    V pre = (warp > 0 ? sh[warp - 1] : (V)0) + x - v;
    *total = sh[nw - 1];
    __syncthreads();
    return pre;
}

/* Bytes of dynamic shared memory the selection kernel needs for rows of up to P (a power of two
 * >= the widest row) key blocks. */
inline int select_smem_bytes(int P) { return P * (int)(sizeof(unsigned long long) + sizeof(int)); }

/* Rows up to this many key blocks (256K tokens at S = 128) run the row-union rule with one warp per
 * composite row, each sorting its own copy of the candidates: kSelThreads / 32 copies of P keys. */
constexpr int kWarpCoverMaxP = 2048;
inline int select_smem_bytes_warp_covers(int P)
{
    return P * (int)((kSelThreads / 32) * sizeof(unsigned long long) + sizeof(int));
}

/* Queues the selection rule over `rows` selection rows (select_mass.cu). */
us_status launch_select_by_mass(const SelectParams &p, int64_t rows, int P, cudaStream_t stream, us_error *err);

/* Smallest power of two >= the widest row, or an error when the rows are wider than the sort. */
inline us_status sort_width(const us_cuda_plan *plan, int *P, us_error *err)
{
    const int max_vis = plan->h_visible[plan->n_qblocks - 1];
    int w = 1;
    while (w < max_vis) w <<= 1;
    if (w > kMaxSort)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "GPU selection sorts up to %d key blocks per row in shared memory (this call has %d: "
                            "use a larger block or fewer keys)",
                            kMaxSort, max_vis);
    *P = w;
    return US_OK;
}

inline size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

inline bool aligned16(const us_tensor *t)
{
    return ((uintptr_t)t->data % 16) == 0 && t->stride[0] % 8 == 0 && t->stride[1] % 8 == 0;
}

/* Grows plan->est_scratch to at least `need` bytes (first call, or a call that needs more). */
inline us_status ensure_scratch(us_cuda_plan *plan, size_t need, const char *who, us_error *err)
{
    if (plan->est_scratch_bytes >= need) return US_OK;
    if (plan->est_scratch) US_CUDA_TRY(err, cudaFree(plan->est_scratch));
    plan->est_scratch = NULL;
    plan->est_scratch_bytes = 0;
    cudaError_t e = cudaMalloc(&plan->est_scratch, need);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* reported here: a later launch check must not see it again */
        plan->est_scratch = NULL;
        return us_error_set(err, e == cudaErrorMemoryAllocation ? US_ERR_NOMEM : US_ERR_DEVICE,
                            "%s GPU estimation scratch of %.1f MB: %s", who, (double)need / 1048576.0,
                            cudaGetErrorString(e));
    }
    plan->est_scratch_bytes = need;
    return US_OK;
}

} // namespace us_est

#endif
