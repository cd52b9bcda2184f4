/* flash_wgmma.cu: exact block-sparse attention forward on Hopper (sm_90a) with warpgroup MMA and
 * the tensor memory accelerator, dense included (every visible block kept). The same contract as
 * flash_sparse.cu, which stays the fallback for whatever this kernel does not cover.
 *
 * One CTA per (query block of BM = S rows, query head), FA3's structure:
 * - warpgroup 0 is the producer: one thread walks the kept key blocks of the CTA's selection row
 *   (sub-tiles of BN keys) and issues TMA copies (cp.async.bulk.tensor, 128-byte swizzle, 64-column
 *   boxes) of K and V into a STAGES-deep shared-memory ring, each stage guarded by full / empty
 *   mbarriers (K and V apart, so that S = Q K^T starts before V lands); rows past the end of the
 *   sequence arrive as zeros. It gives its registers away (setmaxnreg) to the consumers.
 * - warpgroups 1 .. BM / 64 are consumers of 64 query rows each: S = Q K^T is wgmma m64nBNk16 with
 *   both operands in shared memory (K-major descriptors), the online softmax runs in registers in
 *   base 2 (the mask is a visible key prefix per query, applied only to tiles that cross a row's
 *   limit), P is converted in registers into wgmma A fragments, and O += P V is wgmma m64nDk16 with
 *   A from registers and V as an N-major shared-memory operand. FA3's schedule (US_WGMMA_OVERLAP,
 *   the default): tile j's Q K^T is issued together with tile j - 1's P V, tile j's softmax runs
 *   while that P V is in flight, O is rescaled in registers before the next P V, and with two
 *   consumer warpgroups a pair of named barriers makes them take turns issuing their products,
 *   so that one's softmax overlaps the other's tensor-core work. Measured on an H100 (dense causal
 *   bf16, 16K tokens): 615-654 TFLOP/s against 559-591 for the plain schedule (each warpgroup
 *   waits for its own products) and 254-256 for flash_sparse.cu.
 * Output rows and the LSE are written from registers, as in flash_sparse.cu.
 *
 * Shapes: d = 64, 128, 256; BM = 64 or 128 (the selection block); BN = min(128, BM) keys (64 at
 * d = 256); bf16 or f16 in, fp32 accumulation. Needs 16-byte aligned q/k/v rows and tensor strides
 * that TMA accepts (multiples of 16 bytes); anything else runs flash_sparse.cu.
 * Register/shared-memory report: `nvcc -Xptxas -v` in the build log.
 */
#include "plan.h"
#include "wgmma_ops.cuh"

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace {

constexpr int KEPT_CAP = 1024; /* kept blocks staged in shared memory (more are read from global) */

#ifndef US_WGMMA_OVERLAP
#define US_WGMMA_OVERLAP 1 /* 0: the plain schedule (measured 9-10% slower, bench/RESULTS.md) */
#endif

struct WParams {
    void *o;
    float *lse;
    int64_t o_head, o_tok;
    const int32_t *limit;
    const int64_t *row_offset;
    const int32_t *counts;
    const int32_t *indices;
    int nq, nk, nqb, group, heads_per_row;
    int q_swap, kv_swap; /* tensor-map dimension order: 0 {d, token, head}, 1 {d, head, token} */
    float scale_log2;
};

template <int D> struct WCfg;
template <> struct WCfg<64> {
    static constexpr int BN = 128, STAGES = 3;
};
template <> struct WCfg<128> {
    static constexpr int BN = 128, STAGES = 2;
};
template <> struct WCfg<256> {
    static constexpr int BN = 64, STAGES = 2;
};

template <typename T, int D, int BM> struct Layout {
    static constexpr int NCW = BM / 64;                                   /* consumer warpgroups */
    static constexpr int THREADS = (NCW + 1) * 128;
    static constexpr int BN = WCfg<D>::BN < BM ? WCfg<D>::BN : BM;        /* keys per sub-tile */
    static constexpr int STAGES = WCfg<D>::STAGES;
    static constexpr int SUB = BM / BN;                                   /* sub-tiles per key block */
    static constexpr uint32_t QBYTES = BM * D * 2, KBYTES = BN * D * 2;   /* Q tile, one K or V stage */
    static constexpr uint32_t BARS = QBYTES + 2 * STAGES * KBYTES;        /* offset of the mbarriers */
    static constexpr int NBARS = 1 + 4 * STAGES;
    static constexpr size_t SMEM = 1024 + BARS + NBARS * 8;               /* + alignment slack */
};

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
/* Waits for the completion of the barrier's phase with this parity. */
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n"
                 ".reg .pred P1;\n"
                 "WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
                 "@!P1 bra WAIT;\n"
                 "}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}
/* One box of a 3-D tensor map into shared memory, completing on bar. */
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap *map, int c0, int c1, int c2, uint32_t bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
                 "%3, %4}], [%5];\n" ::"r"(dst),
                 "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}

/* Shared-memory matrix descriptor, 128-byte swizzle (the layout TMA writes): start address, the
 * leading-dimension and stride byte offsets, all >> 4. */
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) |
           (1ull << 62);
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <typename T> __device__ __forceinline__ uint32_t pack2(float x, float y);
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float x, float y)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<uint32_t *>(&v);
}
template <> __device__ __forceinline__ uint32_t pack2<__half>(float x, float y)
{
    __half2 v = __floats2half2_rn(x, y);
    return *reinterpret_cast<uint32_t *>(&v);
}

template <typename T, int D, int BM>
__global__ void __launch_bounds__(Layout<T, D, BM>::THREADS, 1)
    flash_wgmma_kernel(const __grid_constant__ CUtensorMap tmq, const __grid_constant__ CUtensorMap tmk,
                       const __grid_constant__ CUtensorMap tmv, const WParams p)
{
    using L = Layout<T, D, BM>;
    constexpr int BN = L::BN, ST = L::STAGES, SUB = L::SUB, NCH = D / 64;
    extern __shared__ unsigned char smem_raw[];
    __shared__ int32_t s_kept[KEPT_CAP];
    /* 128-byte swizzled tiles repeat every 1024 bytes: align the base so that TMA and the wgmma
     * descriptors agree on the pattern */
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = base, sK = base + L::QBYTES, sV = sK + ST * L::KBYTES, bars = base + L::BARS;
    auto q_full = [&]() { return bars; };
    auto k_full = [&](int s) { return bars + 8u * (1 + s); };
    auto v_full = [&](int s) { return bars + 8u * (1 + ST + s); };
    auto k_empty = [&](int s) { return bars + 8u * (1 + 2 * ST + s); };
    auto v_empty = [&](int s) { return bars + 8u * (1 + 3 * ST + s); };

    const int tid = threadIdx.x;
    const int i = p.nqb - 1 - (int)blockIdx.x; /* late (heavier) query blocks first */
    const int h = blockIdx.y, kvh = h / p.group;
    const int64_t row = (int64_t)(h / p.heads_per_row) * p.nqb + i;
    const int count = p.counts[row];
    const int32_t *kept = p.indices + p.row_offset[row];
    const int q0 = i * BM, qvalid = min(BM, p.nq - q0);
    const int lim_max = p.limit[q0 + qvalid - 1];

    for (int x = tid; x < min(count, KEPT_CAP); x += L::THREADS) s_kept[x] = kept[x];
    if (tid == 0) {
        mbar_init(q_full(), 1);
        for (int s = 0; s < ST; s++) {
            mbar_init(k_full(s), 1);
            mbar_init(v_full(s), 1);
            mbar_init(k_empty(s), L::NCW * 4); /* one arrival per consumer warp */
            mbar_init(v_empty(s), L::NCW * 4);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    const int32_t *kept_s = count <= KEPT_CAP ? s_kept : kept;
    const int total = count * SUB;
    auto key_start = [&](int t) { return kept_s[t / SUB] * BM + (t % SUB) * BN; };
    auto next_valid = [&](int t) {
        while (t < total) {
            const int ks = key_start(t);
            if (ks <= lim_max && ks < p.nk) break;
            t++;
        }
        return t;
    };

    if (tid < 128) {
        /* ---- producer ---- */
        if (L::NCW == 2) asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (tid == 0) {
            mbar_expect_tx(q_full(), L::QBYTES);
            for (int c = 0; c < NCH; c++)
                tma_load(sQ + c * BM * 128, &tmq, c * 64, p.q_swap ? h : q0, p.q_swap ? q0 : h, q_full());
            int it = 0;
            for (int t = next_valid(0); t < total; t = next_valid(t + 1), it++) {
                const int s = it % ST;
                const uint32_t ph = (uint32_t)(it / ST) & 1u;
                const int ks = key_start(t);
                const int c1 = p.kv_swap ? kvh : ks, c2 = p.kv_swap ? ks : kvh;
                mbar_wait(k_empty(s), ph ^ 1u); /* the first round passes at once */
                mbar_expect_tx(k_full(s), L::KBYTES);
                for (int c = 0; c < NCH; c++) tma_load(sK + s * L::KBYTES + c * BN * 128, &tmk, c * 64, c1, c2, k_full(s));
                mbar_wait(v_empty(s), ph ^ 1u);
                mbar_expect_tx(v_full(s), L::KBYTES);
                for (int c = 0; c < NCH; c++) tma_load(sV + s * L::KBYTES + c * BN * 128, &tmv, c * 64, c1, c2, v_full(s));
            }
        }
    } else {
        /* ---- consumers ---- */
        if (L::NCW == 2) asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
        const int wt = tid - 128, cw = wt / 128, warp = (wt % 128) / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
        const int r0 = q0 + cw * 64 + warp * 16 + g;
        int lim[2];
        int lim_min_lane = 0x7fffffff;
#pragma unroll
        for (int x = 0; x < 2; x++) {
            const int r = r0 + 8 * x;
            lim[x] = r < p.nq ? p.limit[r] : -1;
            if (lim[x] >= 0) lim_min_lane = min(lim_min_lane, lim[x]);
        }
        const int lim_min_warp = __reduce_min_sync(0xffffffffu, lim_min_lane);

        /* o is first written by the first tile's P V (scale-d off), not zeroed here: register moves
         * before the loop make ptxas serialise every wgmma of the loop (it cannot tell them apart
         * from writes into a P V still in flight) */
        float o[D / 2], s[BN / 2];
        float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
        uint32_t pa[BN / 16][4];
        /* descriptors: Q rows of this warpgroup, K and V stages; k-steps advance the start address
         * (32 bytes inside a 128-byte row for K-major, 16 rows of 128 bytes for V) */
        const uint32_t q_base = sQ + cw * 64 * 128;
        /* online softmax of the tile in s (log2 units): mask keys past each row's limit where the
         * tile crosses one, update m and l, leave 2^(s - m) in s and the factor for o in alpha */
        auto softmax = [&](int kstart, float alpha[2]) {
            const bool crosses = kstart + BN - 1 > lim_min_warp;
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    const int key = kstart + 8 * j + 2 * t4 + (c & 1);
                    if (crosses && key > lim[c >> 1]) s[4 * j + c] = -INFINITY;
                    mx[c >> 1] = fmaxf(mx[c >> 1], s[4 * j + c]);
                }
            float use[2];
#pragma unroll
            for (int x = 0; x < 2; x++) {
                mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 1));
                mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 2));
                const float mn = fmaxf(m[x], mx[x] * p.scale_log2);
                /* a row that has seen nothing yet keeps -inf; exponentiate against 0, not inf - inf */
                use[x] = mn == -INFINITY ? 0.0f : mn;
                alpha[x] = fast_exp2(m[x] - use[x]);
                m[x] = mn;
                l[x] *= alpha[x];
            }
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
#pragma unroll
                for (int c = 0; c < 8; c++) s[8 * kk + c] = fast_exp2(fmaf(s[8 * kk + c], p.scale_log2, -use[(c >> 1) & 1]));
                l[0] += (s[8 * kk] + s[8 * kk + 1]) + (s[8 * kk + 4] + s[8 * kk + 5]);
                l[1] += (s[8 * kk + 2] + s[8 * kk + 3]) + (s[8 * kk + 6] + s[8 * kk + 7]);
            }
        };
        auto rescale_o = [&](const float alpha[2]) {
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                o[4 * j] *= alpha[0], o[4 * j + 1] *= alpha[0];
                o[4 * j + 2] *= alpha[1], o[4 * j + 3] *= alpha[1];
            }
        };
        /* P (bf16/f16) from s straight into wgmma A fragments */
        auto convert_p = [&]() {
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                pa[kk][0] = pack2<T>(s[8 * kk], s[8 * kk + 1]), pa[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
                pa[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]), pa[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
            }
        };
        auto issue_qk = [&](int st) {
            const uint32_t k_base = sK + st * L::KBYTES;
            us_wg::fence();
            us_wg::Op<T, BN>::ss0(s, desc(q_base, 16, 1024), desc(k_base, 16, 1024));
#pragma unroll
            for (int kk = 1; kk < D / 16; kk++)
                us_wg::Op<T, BN>::ss(s, desc(q_base + (kk / 4) * BM * 128 + (kk % 4) * 32, 16, 1024),
                                     desc(k_base + (kk / 4) * BN * 128 + (kk % 4) * 32, 16, 1024));
            us_wg::commit();
        };
        /* O (+)= P V for the tile in stage st; the first tile's first step overwrites o */
        auto issue_pv = [&](int st, bool first_tile) {
            us_wg::fence_regs<D / 2>(o);
            us_wg::fence_regs<BN / 4>(&pa[0][0]);
            us_wg::fence();
            const uint32_t v_base = sV + st * L::KBYTES;
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++)
                us_wg::Op<T, D>::rs(o, pa[kk], desc(v_base + kk * 16 * 128, BN * 128, 1024), kk > 0 || !first_tile);
            us_wg::commit();
        };
        auto release = [&](uint32_t bar) {
            __syncwarp();
            if (lane == 0) mbar_arrive(bar);
        };

        mbar_wait(q_full(), 0);
        int it = 0;
#if US_WGMMA_OVERLAP
        /* FA3's schedule: tile j's Q K^T is issued together with tile j - 1's P V, the softmax of
         * tile j runs while that P V is in flight, and (two consumer warpgroups) a pair of named
         * barriers makes the warpgroups take turns issuing, so that one's softmax overlaps the
         * other's matrix products */
        constexpr bool PP = L::NCW == 2;
        const int bar_mine = 1 + cw, bar_other = 2 - cw;
        if (PP && cw == 1) asm volatile("bar.arrive %0, 256;\n" ::"r"(1) : "memory"); /* warpgroup 0 goes first */
        /* the first tile is peeled off so that the loop issues both products unconditionally
         * (conditional issue makes ptxas insert waits) */
        float alpha[2];
        int prev_st = 0;
        uint32_t prev_ph = 0;
        int t = next_valid(0);
        if (t < total) {
            mbar_wait(k_full(0), 0);
            if (PP) asm volatile("bar.sync %0, 256;\n" ::"r"(bar_mine) : "memory");
            issue_qk(0);
            if (PP) asm volatile("bar.arrive %0, 256;\n" ::"r"(bar_other) : "memory");
            us_wg::wait<0>();
            us_wg::fence_regs<BN / 2>(s);
            release(k_empty(0));
            softmax(key_start(t), alpha);
            convert_p();
            it = 1;
            for (t = next_valid(t + 1); t < total; it++) {
                const int st = it % ST;
                const uint32_t ph = (uint32_t)(it / ST) & 1u;
                const int kstart = key_start(t);
                mbar_wait(k_full(st), ph);
                if (PP) asm volatile("bar.sync %0, 256;\n" ::"r"(bar_mine) : "memory");
                issue_qk(st);
                rescale_o(alpha); /* the first time o is undefined and the P V below overwrites it */
                mbar_wait(v_full(prev_st), prev_ph);
                issue_pv(prev_st, it == 1);
                if (PP) asm volatile("bar.arrive %0, 256;\n" ::"r"(bar_other) : "memory");
                us_wg::wait<1>(); /* this Q K^T; the P V may still run */
                us_wg::fence_regs<BN / 2>(s);
                release(k_empty(st));
                softmax(kstart, alpha);
                us_wg::wait<0>();
                us_wg::fence_regs<D / 2>(o);
                release(v_empty(prev_st));
                convert_p();
                prev_st = st, prev_ph = ph;
                t = next_valid(t + 1);
            }
            /* the last tile's P V */
            rescale_o(alpha);
            mbar_wait(v_full(prev_st), prev_ph);
            issue_pv(prev_st, it == 1);
            us_wg::wait<0>();
            us_wg::fence_regs<D / 2>(o);
        }
        if (PP && cw == 0) asm volatile("bar.sync %0, 256;\n" ::"r"(1) : "memory"); /* warpgroup 1's last arrival */
#else
        /* tile j's P V runs while tile j + 1's Q K^T is issued; the other consumer warpgroup's work
         * fills this one's softmax */
        for (int t = next_valid(0); t < total; it++) {
            const int st = it % ST;
            const uint32_t ph = (uint32_t)(it / ST) & 1u;
            const int kstart = key_start(t);
            mbar_wait(k_full(st), ph);
            issue_qk(st);
            us_wg::wait<0>(); /* this Q K^T and the previous tile's P V */
            us_wg::fence_regs<BN / 2>(s);
            us_wg::fence_regs<D / 2>(o);
            release(k_empty(st));
            if (it > 0) release(v_empty((it - 1) % ST));
            float alpha[2];
            softmax(kstart, alpha);
            rescale_o(alpha);
            convert_p();
            mbar_wait(v_full(st), ph);
            issue_pv(st, it == 0);
            t = next_valid(t + 1);
        }
        us_wg::wait<0>();
        us_wg::fence_regs<D / 2>(o);
#endif
#pragma unroll
        for (int x = 0; x < D / 2; x++) o[x] = it > 0 ? o[x] : 0.0f; /* no tile: zeros (and lse -inf) */

        T *og = reinterpret_cast<T *>(p.o) + h * p.o_head;
#pragma unroll
        for (int x = 0; x < 2; x++) {
            /* row sums: each row's values are spread over the 4 threads of a quad */
            float sum = l[x];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            const int r = r0 + 8 * x;
            if (r >= p.nq) continue;
#pragma unroll
            for (int j = 0; j < D / 8; j++)
                *reinterpret_cast<uint32_t *>(og + (int64_t)r * p.o_tok + 8 * j + 2 * t4) =
                    pack2<T>(o[4 * j + 2 * x] * inv, o[4 * j + 2 * x + 1] * inv);
            if (p.lse && t4 == 0)
                p.lse[(int64_t)h * p.nq + r] = sum > 0.0f ? (m[x] + __log2f(sum)) * 0.6931471805599453f : -INFINITY;
        }
    }
}

/* ---- host side ---------------------------------------------------------------------------------- */

typedef CUresult (*EncodeTiled)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *, const cuuint64_t *,
                                const cuuint64_t *, const cuuint32_t *, const cuuint32_t *, CUtensorMapInterleave,
                                CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

/* The driver's tensor-map encoder, found through the runtime (no link against libcuda, so that
 * the programs still start, and skip, where no driver is installed). */
EncodeTiled encoder()
{
    static EncodeTiled fn = nullptr;
    if (!fn) {
        void *ptr = nullptr;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (EncodeTiled)ptr;
        else
            cudaGetLastError();
    }
    return fn;
}

/* A 3-D map over t ([heads, tokens, d]) with boxes of 64 columns x rows tokens, 128-byte swizzle;
 * the two outer dimensions in the order of their strides. Returns false if TMA refuses it. */
bool make_map(EncodeTiled enc, CUtensorMap *map, const us_tensor *t, int rows, int *swap)
{
    const cuuint64_t es = 2;
    const int64_t hs = t->stride[0], ts = t->stride[1];
    *swap = hs < ts && t->shape[0] > 1; /* token-major storage: {d, head, token} */
    cuuint64_t dims[3] = {(cuuint64_t)t->shape[2], (cuuint64_t)(*swap ? t->shape[0] : t->shape[1]),
                          (cuuint64_t)(*swap ? t->shape[1] : t->shape[0])};
    cuuint64_t strides[2] = {(cuuint64_t)((*swap ? hs : ts) * es), (cuuint64_t)((*swap ? ts : hs) * es)};
    if (t->shape[0] == 1) strides[1] = strides[0] * dims[1]; /* unused; any legal value */
    cuuint32_t box[3] = {64, *swap ? 1u : (cuuint32_t)rows, *swap ? (cuuint32_t)rows : 1u};
    cuuint32_t estr[3] = {1, 1, 1};
    if (strides[0] % 16 || strides[1] % 16 || strides[0] == 0 || strides[1] == 0) return false;
    CUresult r = enc(map, t->dtype == US_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 3,
                     t->data, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

template <typename T, int D, int BM>
us_status launch(const CUtensorMap &mq, const CUtensorMap &mk, const CUtensorMap &mv, const WParams &p, int hq,
                 cudaStream_t stream, us_error *err)
{
    using L = Layout<T, D, BM>;
    static bool configured = false; /* the attribute is per function, set once */
    if (!configured) {
        US_CUDA_TRY(err, cudaFuncSetAttribute(flash_wgmma_kernel<T, D, BM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              (int)L::SMEM));
        configured = true;
    }
    dim3 grid((unsigned)p.nqb, (unsigned)hq);
    flash_wgmma_kernel<T, D, BM><<<grid, L::THREADS, L::SMEM, stream>>>(mq, mk, mv, p);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T, int BM>
us_status by_dim(const CUtensorMap &mq, const CUtensorMap &mk, const CUtensorMap &mv, const WParams &p, int d, int hq,
                 cudaStream_t s, us_error *err)
{
    switch (d) {
    case 64: return launch<T, 64, BM>(mq, mk, mv, p, hq, s, err);
    case 128: return launch<T, 128, BM>(mq, mk, mv, p, hq, s, err);
    case 256: return launch<T, 256, BM>(mq, mk, mv, p, hq, s, err);
    }
    return us_error_set(err, US_ERR_UNSUPPORTED, "Hopper attention: head dim %d (64, 128 or 256)", d);
}

bool aligned_rows(const us_tensor *t)
{
    return (uintptr_t)t->data % 16 == 0 && t->stride[0] % 8 == 0 && t->stride[1] % 8 == 0;
}

} // namespace

bool us_cuda_wgmma_covers(const us_cuda_plan *plan, const us_attn_args *a)
{
    return (plan->d == 64 || plan->d == 128 || plan->d == 256) && (plan->block == 64 || plan->block == 128) &&
           (plan->dtype == US_BF16 || plan->dtype == US_F16) && aligned_rows(&a->q) && aligned_rows(&a->k) &&
           aligned_rows(&a->v) && a->o.stride[1] % 2 == 0 && a->o.stride[0] % 2 == 0 && (uintptr_t)a->o.data % 4 == 0 &&
           encoder() != nullptr;
}

us_status us_cuda_attention_wgmma(const us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    if (!us_cuda_wgmma_covers(plan, a))
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "Hopper attention kernel: needs d 64/128/256, block 64/128, f16/bf16, 16-byte aligned rows");
    const int BN = plan->d == 256 ? 64 : plan->block;
    CUtensorMap mq, mk, mv;
    WParams p;
    EncodeTiled enc = encoder();
    int kv_swap2 = 0;
    if (!make_map(enc, &mq, &a->q, plan->block, &p.q_swap) || !make_map(enc, &mk, &a->k, BN, &p.kv_swap) ||
        !make_map(enc, &mv, &a->v, BN, &kv_swap2) || kv_swap2 != p.kv_swap)
        return us_error_set(err, US_ERR_UNSUPPORTED, "Hopper attention kernel: TMA does not accept these tensor strides");
    p.o = a->o.data, p.lse = a->lse;
    p.o_head = a->o.stride[0], p.o_tok = a->o.stride[1];
    p.limit = plan->d_limit, p.row_offset = plan->d_row_offset, p.counts = plan->d_counts, p.indices = plan->d_indices;
    p.nq = (int)plan->nq, p.nk = (int)plan->nk, p.nqb = plan->n_qblocks, p.group = plan->group;
    p.heads_per_row = plan->heads_per_row;
    p.scale_log2 = plan->scale * 1.4426950408889634f;
    if (plan->dtype == US_BF16)
        return plan->block == 64 ? by_dim<__nv_bfloat16, 64>(mq, mk, mv, p, plan->d, plan->hq, stream, err)
                                 : by_dim<__nv_bfloat16, 128>(mq, mk, mv, p, plan->d, plan->hq, stream, err);
    return plan->block == 64 ? by_dim<__half, 64>(mq, mk, mv, p, plan->d, plan->hq, stream, err)
                             : by_dim<__half, 128>(mq, mk, mv, p, plan->d, plan->hq, stream, err);
}
