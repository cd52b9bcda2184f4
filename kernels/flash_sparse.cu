/* flash_sparse.cu: exact block-sparse attention forward on the GPU, dense included (every visible
 * block kept).
 *
 * One CTA per (query block of S = BM rows, query head); its warps own 16 query rows each. The CTA
 * walks the kept key blocks of its selection row in sub-tiles of BN keys (Tiling): K and V sub-tiles
 * are copied to shared memory with cp.async, two stages deep, and XOR-swizzled in 16-byte chunks so
 * that ldmatrix reads are free of bank conflicts. Scores and P.V are mma.sync m16n8k16 (bf16 or
 * f16 in, fp32 accumulate); the online softmax runs in base 2 in registers, the scale folded into
 * one FFMA per score; P goes from the score
 * accumulators straight into A fragments. The mask is a visible key prefix per query (plan.h), so
 * masking is one compare per score, applied only to sub-tiles that cross a row's limit.
 *
 * Register/shared-memory report: `nvcc -Xptxas -v` in the build log (kernels are instantiated for
 * d = 64, 128, 256, BM = 64, 128, bf16 and f16).
 */
#include "plan.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace {

#ifndef US_FLASH_BN_D128
#define US_FLASH_BN_D128 64 /* keys per sub-tile at d = 128 (a build-time knob for tuning runs) */
#endif
constexpr int KEPT_CAP = 2048;  /* kept blocks staged in shared memory (more are read from global) */

struct Params {
    const void *q, *k, *v;
    void *o;
    float *lse;
    int64_t q_head, q_tok, k_head, k_tok, v_head, v_tok, o_head, o_tok; /* strides, elements */
    const int32_t *limit;
    const int64_t *row_offset;
    const int32_t *counts;
    const int32_t *indices;
    int nq, nk, nqb, group, heads_per_row;
    float scale_log2;
};

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

template <typename T> struct Mma;

template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float x, float y)
    {
        __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
        return *reinterpret_cast<uint32_t *>(&v);
    }
};

template <> struct Mma<__half> {
    static __device__ __forceinline__ void run(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float x, float y)
    {
        __half2 v = __floats2half2_rn(x, y);
        return *reinterpret_cast<uint32_t *>(&v);
    }
};

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* Element offset of 16-byte chunk c of row r in a [rows, D] tile, chunks XOR-swizzled by row. */
template <int D> __device__ __forceinline__ int swz(int r, int c) { return r * D + ((c ^ (r & 7)) << 3); }

/* Copies rows [0, rows) of a [rows, D] tile from global (row stride `stride` elements); rows at or
 * past `valid` are zero-filled. */
template <typename T, int D, int NT>
__device__ __forceinline__ void load_tile(T *dst, const T *src, int64_t stride, int rows, int valid, int tid)
{
    constexpr int CH = D / 8;
    for (int x = tid; x < rows * CH; x += NT) {
        int r = x / CH, c = x % CH;
        const T *g = src + (int64_t)(r < valid ? r : 0) * stride + c * 8;
        uint32_t s = smem_addr(dst + swz<D>(r, c));
        int bytes = r < valid ? 16 : 0;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(bytes));
    }
}

__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* Warps own MT m16 tiles each (16 * MT query rows): with MT = 2 every K and V fragment read from
 * shared memory feeds two MMAs, halving shared-memory traffic; d = 256 keeps MT = 1 to stay within
 * the register file. */
template <int D> struct Tiling {
    static constexpr int MT = D == 256 ? 1 : 2;                 /* m16 tiles per warp */
    static constexpr int BN = D == 128 ? US_FLASH_BN_D128 : 64; /* keys per sub-tile */
};

template <typename T, int D, int BM>
__global__ void __launch_bounds__(BM / (16 * Tiling<D>::MT) * 32) flash_sparse_kernel(const Params p)
{
    constexpr int MT = Tiling<D>::MT, BN = Tiling<D>::BN, NW = BM / (16 * MT), NT = NW * 32, SUB = BM / BN;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    T *sQ = reinterpret_cast<T *>(smem_raw);
    T *sK = sQ + BM * D; /* [2][BN][D] */
    T *sV = sK + 2 * BN * D;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tig = lane & 3;
    const int i = p.nqb - 1 - (int)blockIdx.x; /* late (heavier) query blocks first */
    const int h = blockIdx.y, kvh = h / p.group;
    const int64_t row = (int64_t)(h / p.heads_per_row) * p.nqb + i;
    const int count = p.counts[row];
    const int32_t *kept = p.indices + p.row_offset[row];
    const int q0 = i * BM, qvalid = min(BM, p.nq - q0);
    const int lim_max = p.limit[q0 + qvalid - 1];

    const T *qg = reinterpret_cast<const T *>(p.q) + h * p.q_head + (int64_t)q0 * p.q_tok;
    const T *kg = reinterpret_cast<const T *>(p.k) + kvh * p.k_head;
    const T *vg = reinterpret_cast<const T *>(p.v) + kvh * p.v_head;

    /* this thread's rows: for m-tile mt, r[mt][0] = base + g and r[mt][1] = base + g + 8 */
    int rows[MT][2], lim[MT][2];
    int lim_min_lane = 0x7fffffff;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int x = 0; x < 2; x++) {
            rows[mt][x] = q0 + warp * 16 * MT + mt * 16 + g + 8 * x;
            lim[mt][x] = rows[mt][x] < p.nq ? p.limit[rows[mt][x]] : -1;
            if (lim[mt][x] >= 0) lim_min_lane = min(lim_min_lane, lim[mt][x]);
        }
    /* smallest limit among the warp's real rows (rows past nq have none) */
    const int lim_min_warp = __reduce_min_sync(0xffffffffu, lim_min_lane);

    /* the kept block list, staged in shared memory: the loop below reads it before every sub-tile,
     * and a dependent global load there would stall the pipeline */
    __shared__ int32_t s_kept[KEPT_CAP];
    for (int x = tid; x < min(count, KEPT_CAP); x += NT) s_kept[x] = kept[x];
    __syncthreads();
    const int32_t *kept_s = count <= KEPT_CAP ? s_kept : kept;
    const int total = count * SUB;
    auto key_start = [&](int t) { return kept_s[t / SUB] * BM + (t % SUB) * BN; };
    auto next_valid = [&](int t) {
        while (t < total) {
            int ks = key_start(t);
            if (ks <= lim_max && ks < p.nk) break;
            t++;
        }
        return t;
    };

    load_tile<T, D, NT>(sQ, qg, p.q_tok, BM, qvalid, tid);
    int t = next_valid(0);
    if (t < total) {
        int ks = key_start(t);
        load_tile<T, D, NT>(sK, kg + (int64_t)ks * p.k_tok, p.k_tok, BN, p.nk - ks, tid);
        load_tile<T, D, NT>(sV, vg + (int64_t)ks * p.v_tok, p.v_tok, BN, p.nk - ks, tid);
    }
    cp_commit();

    float o[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int n = 0; n < D / 8; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.0f;
    }

    int buf = 0;
    while (t < total) {
        const int tn = next_valid(t + 1);
        if (tn < total) {
            int ks = key_start(tn);
            load_tile<T, D, NT>(sK + (buf ^ 1) * BN * D, kg + (int64_t)ks * p.k_tok, p.k_tok, BN, p.nk - ks, tid);
            load_tile<T, D, NT>(sV + (buf ^ 1) * BN * D, vg + (int64_t)ks * p.v_tok, p.v_tok, BN, p.nk - ks, tid);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const T *k_s = sK + buf * BN * D, *v_s = sV + buf * BN * D;
        const int kstart = key_start(t);

        /* S = Q K^T for this warp's rows and BN keys; each K fragment feeds MT MMAs */
        float s[MT][BN / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int n = 0; n < BN / 8; n++) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                ldsm_x4(a[mt][0], a[mt][1], a[mt][2], a[mt][3],
                        smem_addr(sQ + swz<D>(warp * 16 * MT + mt * 16 + (lane & 15), kk * 2 + (lane >> 4))));
#pragma unroll
            for (int np = 0; np < BN / 16; np++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3,
                        smem_addr(k_s + swz<D>(np * 16 + ((lane >> 4) << 3) + (lane & 7), kk * 2 + ((lane >> 3) & 1))));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(s[mt][2 * np], a[mt], b0, b1);
                    Mma<T>::run(s[mt][2 * np + 1], a[mt], b2, b3);
                }
            }
        }
        /* scale into log2 units; mask keys past each row's limit where the sub-tile crosses one */
        const bool crosses = kstart + BN - 1 > lim_min_warp;
        float use[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int n = 0; n < BN / 8; n++) {
                const int key = kstart + n * 8 + 2 * tig;
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    if (crosses && key + (c & 1) > lim[mt][c >> 1]) s[mt][n][c] = -INFINITY;
                    mx[c >> 1] = fmaxf(mx[c >> 1], s[mt][n][c]);
                }
            }
#pragma unroll
            for (int x = 0; x < 2; x++) {
                mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 1));
                mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 2));
                /* the running max m is kept in scaled log2 units (scale > 0 commutes with max) */
                const float mn = fmaxf(m[mt][x], mx[x] * p.scale_log2);
                /* a row that has seen nothing yet keeps -inf; exponentiate against 0, not inf - inf */
                use[mt][x] = mn == -INFINITY ? 0.0f : mn;
                const float alpha = fast_exp2(m[mt][x] - use[mt][x]);
                m[mt][x] = mn;
                l[mt][x] *= alpha;
#pragma unroll
                for (int n = 0; n < D / 8; n++) o[mt][n][2 * x] *= alpha, o[mt][n][2 * x + 1] *= alpha;
            }
        }

        /* P = exp2(S - m) straight into A fragments, then O += P V; each V fragment feeds MT MMAs */
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                /* one FFMA per score: exp2(s * scale * log2 e - m) */
                const float sl = p.scale_log2, u0 = use[mt][0], u1 = use[mt][1];
                float p0 = fast_exp2(fmaf(s[mt][2 * kk][0], sl, -u0)), p1 = fast_exp2(fmaf(s[mt][2 * kk][1], sl, -u0));
                float p2 = fast_exp2(fmaf(s[mt][2 * kk][2], sl, -u1)), p3 = fast_exp2(fmaf(s[mt][2 * kk][3], sl, -u1));
                float p4 = fast_exp2(fmaf(s[mt][2 * kk + 1][0], sl, -u0));
                float p5 = fast_exp2(fmaf(s[mt][2 * kk + 1][1], sl, -u0));
                float p6 = fast_exp2(fmaf(s[mt][2 * kk + 1][2], sl, -u1));
                float p7 = fast_exp2(fmaf(s[mt][2 * kk + 1][3], sl, -u1));
                l[mt][0] += p0 + p1 + p4 + p5;
                l[mt][1] += p2 + p3 + p6 + p7;
                a[mt][0] = Mma<T>::pack(p0, p1), a[mt][1] = Mma<T>::pack(p2, p3);
                a[mt][2] = Mma<T>::pack(p4, p5), a[mt][3] = Mma<T>::pack(p6, p7);
            }
#pragma unroll
            for (int nd = 0; nd < D / 16; nd++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3,
                          smem_addr(v_s + swz<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), nd * 2 + (lane >> 4))));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(o[mt][2 * nd], a[mt], b0, b1);
                    Mma<T>::run(o[mt][2 * nd + 1], a[mt], b2, b3);
                }
            }
        }
        __syncthreads(); /* this buffer is refilled two sub-tiles later */
        t = tn;
        buf ^= 1;
    }

    T *og = reinterpret_cast<T *>(p.o) + h * p.o_head;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int x = 0; x < 2; x++) {
            /* row sums: each row's values are spread over the 4 threads of a quad */
            float sum = l[mt][x];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            const int r = rows[mt][x];
            if (r >= p.nq) continue;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
                *reinterpret_cast<uint32_t *>(og + (int64_t)r * p.o_tok + n * 8 + 2 * tig) =
                    Mma<T>::pack(o[mt][n][2 * x] * inv, o[mt][n][2 * x + 1] * inv);
            if (p.lse && tig == 0)
                p.lse[(int64_t)h * p.nq + r] = sum > 0.0f ? (m[mt][x] + __log2f(sum)) * 0.6931471805599453f : -INFINITY;
        }
}

template <typename T, int D, int BM>
us_status launch(const Params &p, int hq, cudaStream_t stream, us_error *err)
{
    constexpr size_t smem = (size_t)(BM * D + 4 * Tiling<D>::BN * D) * sizeof(T);
    static bool configured = false; /* the attribute is per function, set once */
    if (!configured) {
        US_CUDA_TRY(err, cudaFuncSetAttribute(flash_sparse_kernel<T, D, BM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              (int)smem));
        configured = true;
    }
    dim3 grid((unsigned)p.nqb, (unsigned)hq);
    flash_sparse_kernel<T, D, BM><<<grid, BM / (16 * Tiling<D>::MT) * 32, smem, stream>>>(p);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T, int BM> us_status by_dim(const Params &p, int d, int hq, cudaStream_t s, us_error *err)
{
    switch (d) {
    case 64: return launch<T, 64, BM>(p, hq, s, err);
    case 128: return launch<T, 128, BM>(p, hq, s, err);
    case 256: return launch<T, 256, BM>(p, hq, s, err);
    }
    return us_error_set(err, US_ERR_UNSUPPORTED, "GPU attention: head dim %d (64, 128 or 256)", d);
}

template <typename T> us_status by_block(const Params &p, int block, int d, int hq, cudaStream_t s, us_error *err)
{
    return block == 64 ? by_dim<T, 64>(p, d, hq, s, err) : by_dim<T, 128>(p, d, hq, s, err);
}

} // namespace

us_status us_cuda_attention_sparse(const us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    Params p;
    p.q = a->q.data, p.k = a->k.data, p.v = a->v.data, p.o = a->o.data, p.lse = a->lse;
    p.q_head = a->q.stride[0], p.q_tok = a->q.stride[1];
    p.k_head = a->k.stride[0], p.k_tok = a->k.stride[1];
    p.v_head = a->v.stride[0], p.v_tok = a->v.stride[1];
    p.o_head = a->o.stride[0], p.o_tok = a->o.stride[1];
    /* 16-byte copies and 4-byte stores need aligned rows */
    if ((p.q_tok | p.k_tok | p.v_tok | p.q_head | p.k_head | p.v_head) % 8 || (p.o_tok | p.o_head) % 2 ||
        ((uintptr_t)p.q | (uintptr_t)p.k | (uintptr_t)p.v) % 16 || (uintptr_t)p.o % 4)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "GPU attention needs 16-byte aligned q/k/v rows and 4-byte aligned o rows");
    p.limit = plan->d_limit, p.row_offset = plan->d_row_offset, p.counts = plan->d_counts, p.indices = plan->d_indices;
    p.nq = (int)plan->nq, p.nk = (int)plan->nk, p.nqb = plan->n_qblocks, p.group = plan->group;
    p.heads_per_row = plan->heads_per_row;
    p.scale_log2 = plan->scale * 1.4426950408889634f;
    if (plan->dtype == US_BF16) return by_block<__nv_bfloat16>(p, plan->block, plan->d, plan->hq, stream, err);
    return by_block<__half>(p, plan->block, plan->d, plan->hq, stream, err);
}
