/* estimate_unisparse.cu: UniSparse estimation and selection on the device (reproduces the CPU
 * selector: attention/select_unisparse.c, block_scores.c, selection.c).
 *
 * Three steps, all queued on the caller's stream, no host synchronisation and no copies (the first
 * call, and a call that needs more scratch, allocates it):
 *
 * 1. pool_kernel: composite queries qc [ne, nqc, d] (cq tokens x ch query heads, times
 *    scale * log2 e) and, only when keys are pooled (ck > 1, ch spanning several KV heads, or a K
 *    tensor that is not 16-byte aligned), composite keys kc [nkh, nkc, d]. One thread per 8
 *    elements, 16-byte loads when aligned; sums in fp32 in the CPU's order. The result is stored as
 *    a pair (hi, lo) of the input dtype with hi + lo = x to about 16 (bf16) or 22 (f16) significant
 *    bits, so that the tensor-core products below reproduce the CPU's fp32 logits closely enough
 *    for block rankings to agree (a single bf16 pass was measured 1.3x faster at 128K but kept only
 *    82-93% of the CPU's rows on structured inputs). With ck = 1 and one KV head per estimate (the
 *    default) the keys are read straight from K: one token is exact in its dtype.
 *
 * 2. score_kernel: one CTA per (64 composite query rows, chunk of up to 4096 composite keys, estimate
 *    head); chunks that no row of the tile sees exit at once. 4 warps of 16 rows. K tiles (64
 *    keys; 32 for d = 256) stream through shared memory with cp.async, two stages, XOR-swizzled
 *    16-byte chunks; ldmatrix feeds mma.sync m16n8k16 (bf16/f16 in, fp32 accumulate):
 *    z = q_hi.k + q_lo.k (+ q_hi.k_lo for pooled keys), the B fragments of a k step loaded first so
 *    that each accumulator's consecutive mma are 8 apart. q_hi fragments stay in registers and q_lo
 *    in shared memory (d <= 128; 4 CTAs per SM), both in shared memory for d = 256. Scores are
 *    masked at each row's visible composite-key prefix nv(u) (only in tiles that cross it) and
 *    reduced per (row, key block) to a base-2 partial (max m, sum of 2^(z - m)) in scratch, one
 *    pass over the keys, plus each row's (max, sum) over the CTA's chunk. When a key block spans
 *    whole tiles (ck = 1: 128 or 64 keys) the reduction stays in registers (quad shuffles, one
 *    ex2.approx per score); smaller blocks (ck > 1) go through a shared-memory score tile.
 *
 * 3. the shared selection rule (select_mass.cu): per selection row, the importance of each key
 *    block from the partials, then us_select_row_by_mass (forced blocks, sort, cumulative tau,
 *    floors, compaction).
 *
 * Scratch (plan->est_scratch): qc hi/lo, kc when pooled, the partials (n_indices * (S / cq)
 * float2: the selection's own layout times the composite rows per query block, about 270 MB at
 * 128K tokens, 8 estimate heads, S = 128, cq = 16) and the chunk totals (ne * nqc * chunks float2).
 *
 * Measured on an H100 (bf16, causal, defaults, bench/RESULTS.md): 32/8 heads, d 128: 0.75 ms at 32K
 * tokens, 10.3 ms at 128K; Gemma 3 270M's 4/1 heads, d 256, real input: 0.057 ms at 8K (pooling 12
 * us, scores 24, selection 13), 0.097 ms at 16K.
 */
#include "estimate_common.cuh"

namespace {

using namespace us_est;

constexpr int kRows = 64;         /* composite query rows per score CTA */
constexpr int kScoreThreads = 128; /* 4 warps x 16 rows */
constexpr int kChunk = 4096;      /* composite keys per score CTA at most (a multiple of every tile and block) */
constexpr int kPoolThreads = 256;

/* ---- 1. pooling ----------------------------------------------------------------------------------- */

/* dst row (e, u) = mean over heads [e*nh, (e+1)*nh) and tokens [u*c, min((u+1)*c, n_tok)) of src,
 * times mul; one thread per 8 elements. Written as hi = rn(x), lo = rn(x - hi) (lo may be NULL). */
template <typename T, bool VEC>
__global__ void __launch_bounds__(kPoolThreads) pool_kernel(const T *__restrict__ src, int64_t hs, int64_t ts,
                                                            int64_t n_tok, int c, int nh, int64_t n_comp,
                                                            int n_out_heads, int d, float mul, T *__restrict__ hi,
                                                            T *__restrict__ lo)
{
    const int chunks = d / 8;
    const int64_t x = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= (int64_t)n_out_heads * n_comp * chunks) return;
    const int cc = (int)(x % chunks);
    const int64_t row = x / chunks;
    const int e = (int)(row / n_comp);
    const int64_t u = row % n_comp;
    const int64_t t0 = u * c, t1 = t0 + c < n_tok ? t0 + c : n_tok;
    float acc[8];
#pragma unroll
    for (int k = 0; k < 8; k++) acc[k] = 0.0f;
    for (int h = e * nh; h < (e + 1) * nh; h++) {
        const T *p = src + (int64_t)h * hs + t0 * ts + cc * 8;
#pragma unroll 4
        for (int64_t j = t0; j < t1; j++, p += ts) {
            if (VEC) {
                uint4 v = *reinterpret_cast<const uint4 *>(p);
                const T *pv = reinterpret_cast<const T *>(&v);
#pragma unroll
                for (int k = 0; k < 8; k++) acc[k] += Conv<T>::to_f(pv[k]);
            } else {
#pragma unroll
                for (int k = 0; k < 8; k++) acc[k] += Conv<T>::to_f(p[k]);
            }
        }
    }
    const float w = mul / (float)((int64_t)nh * (t1 - t0));
    uint4 vh, vl;
    T *ph = reinterpret_cast<T *>(&vh), *pl = reinterpret_cast<T *>(&vl);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float v = acc[k] * w;
        T h = Conv<T>::from_f(v);
        ph[k] = h;
        pl[k] = Conv<T>::from_f(v - Conv<T>::to_f(h));
    }
    *reinterpret_cast<uint4 *>(hi + row * d + cc * 8) = vh;
    if (lo) *reinterpret_cast<uint4 *>(lo + row * d + cc * 8) = vl;
}

/* ---- 2. scores -------------------------------------------------------------------------------- */

struct ScoreParams {
    const void *qh, *ql;    /* [ne, nqc, D] */
    const void *kh, *kl;    /* key heads; kl only with KSPLIT */
    int64_t k_hs, k_ts;     /* key strides (elements) */
    int ch, group, kv_per_e; /* key head of estimate head e: (e * ch / group) / kv_per_e */
    int nqc, nkc, cq, ck;
    int64_t nq;
    int G, R, n_qblocks; /* composite keys per key block, composite rows per query block */
    int chunk;           /* composite keys per CTA */
    const int32_t *limit;
    const int64_t *row_offset;
    float2 *part; /* [(row_offset[e, i] + b) * R + (u - i * R)]: (max, sum) of row u over key block b */
    float2 *rowpart; /* [(e * nqc + u) * gridDim.y + chunk]: (max, sum) of row u over the CTA's key chunk */
};

template <int D> struct ScoreCfg {
    static constexpr int KT = D <= 128 ? 64 : 32; /* keys per shared-memory tile */
    static constexpr bool QREG = D <= 128;         /* q_hi fragments in registers, q_lo in smem */
    static constexpr int NT = KT / 8;              /* n8 tiles per warp per key tile */
    static constexpr int CH = D / 8;               /* 16-byte chunks per row */
    static constexpr int KS = D / 16;              /* k16 steps */
    static constexpr int QHALF = kRows * D * 2;    /* bytes of q_hi (or q_lo) */
    static constexpr int KHALF = KT * D * 2;       /* bytes of one key tile */
    static constexpr int ZLD = KT + 1;             /* floats per row of the score tile (generic path) */
    static constexpr int smem(bool ksplit, bool whole)
    {
        return (QREG ? 1 : 2) * QHALF + 2 * KHALF * (ksplit ? 2 : 1) + (whole ? 0 : kRows * ZLD * 4);
    }
};

/* Shared memory: d <= 128: [q_lo | key stages], q_hi first staged in the key stages on its way to
 * registers; d = 256: [q_hi | q_lo | key stages]; then the score tile of the generic path. */
template <typename T, int D, bool KSPLIT, bool WHOLE>
__global__ void __launch_bounds__(kScoreThreads, (D <= 128 && !KSPLIT) ? 4 : 2) score_kernel(const ScoreParams p)
{
    using C = ScoreCfg<D>;
    constexpr int KT = C::KT, NT = C::NT, CH = C::CH, KS = C::KS;
    constexpr int STAGE = C::KHALF * (KSPLIT ? 2 : 1);
    static_assert(!C::QREG || 2 * STAGE >= C::QHALF, "q_hi must fit the key stages");
    extern __shared__ __align__(128) unsigned char smem[];

    const int u0 = blockIdx.x * kRows, e = blockIdx.z;
    const int last_row = min(u0 + kRows, p.nqc) - 1;
    const int nv_max = row_nv(p.limit, last_row, p.nqc, p.cq, p.ck, p.nq, p.nkc);
    const int c0 = blockIdx.y * p.chunk;
    if (c0 >= nv_max) return; /* this chunk is invisible to every row of the tile */
    const int c1 = min(c0 + p.chunk, nv_max);

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, q4 = lane % 4;
    const int uA = u0 + warp * 16 + g, uB = uA + 8;
    const int nvA = row_nv(p.limit, uA, p.nqc, p.cq, p.ck, p.nq, p.nkc);
    const int nvB = row_nv(p.limit, uB, p.nqc, p.cq, p.ck, p.nq, p.nkc);
    /* where row u's partial for key block b goes (recomputed at each write: registers are scarce) */
    auto part_at = [&](int u, int b) -> float2 * {
        const int i = u / p.R;
        return p.part + (p.row_offset[(int64_t)e * p.n_qblocks + i] + b) * p.R + (u - i * p.R);
    };

    unsigned char *stages = smem + (C::QREG ? 1 : 2) * C::QHALF;
    const uint32_t st_sm = smem_u32(stages);
    const uint32_t qh_sm = C::QREG ? st_sm : smem_u32(smem), ql_sm = smem_u32(smem) + (C::QREG ? 0 : C::QHALF);

    /* query tile (hi, lo): rows past nqc are zeros */
    {
        const T *qh = (const T *)p.qh + ((int64_t)e * p.nqc + u0) * D;
        const T *ql = (const T *)p.ql + ((int64_t)e * p.nqc + u0) * D;
        for (int x = tid; x < kRows * CH; x += kScoreThreads) {
            int r = x / CH, c = x % CH;
            bool ok = u0 + r < p.nqc;
            int64_t off = ok ? (int64_t)r * D + c * 8 : 0;
            cp_async16(qh_sm + swz<D>(r, c), qh + off, ok ? 16 : 0);
            cp_async16(ql_sm + swz<D>(r, c), ql + off, ok ? 16 : 0);
        }
        cp_async_commit();
    }
    uint32_t qa[C::QREG ? KS : 1][4];
    if constexpr (C::QREG) {
        cp_async_wait<0>();
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < KS; ks++) ldsm_x4(qa[ks], qh_sm + swz<D>(warp * 16 + (lane % 16), 2 * ks + lane / 16));
        __syncthreads(); /* the key stages reuse this memory */
    }

    const int khead = (e * p.ch / p.group) / p.kv_per_e;
    const T *kh = (const T *)p.kh + (int64_t)khead * p.k_hs;
    const T *kl = KSPLIT ? (const T *)p.kl + (int64_t)khead * p.k_hs : nullptr;
    auto load_keys = [&](int j, int stage) {
        const int t0 = c0 + j * KT;
        const uint32_t dst = st_sm + stage * STAGE;
        for (int x = tid; x < KT * CH; x += kScoreThreads) {
            int r = x / CH, c = x % CH;
            bool ok = t0 + r < c1;
            int64_t off = ok ? (int64_t)(t0 + r) * p.k_ts + c * 8 : 0;
            cp_async16(dst + swz<D>(r, c), kh + off, ok ? 16 : 0);
            if (KSPLIT) cp_async16(dst + C::KHALF + swz<D>(r, c), kl + off, ok ? 16 : 0);
        }
        cp_async_commit();
    };

    /* running (max, thread-partial sum) of the current key block, rows A and B (WHOLE path); the
     * rows' totals over the chunk live in shared memory (registers are scarce), each entry updated
     * by one thread only */
    float mA = -INFINITY, sA = 0.0f, mB = -INFINITY, sB = 0.0f;
    __shared__ float2 s_tot[kRows];
    if (tid < kRows) s_tot[tid] = make_float2(-INFINITY, 0.0f); /* ordered by the loop's first barrier */
    float *zs = reinterpret_cast<float *>(stages + 2 * STAGE); /* generic path: [kRows][ZLD] */

    load_keys(0, 0);
    for (int j = 0; c0 + j * KT < c1; j++) {
        const bool last_tile = c0 + (j + 1) * KT >= c1;
        if (!last_tile) {
            load_keys(j + 1, (j + 1) & 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const int t0 = c0 + j * KT;
        const uint32_t ks_sm = st_sm + (j & 1) * STAGE;
        float acc[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
        if (__any_sync(0xffffffffu, t0 < nvA || t0 < nvB)) { /* some row of the warp sees the tile */
            /* all B fragments of a k step first, then the q_hi products, then the q_lo ones: each
             * accumulator's consecutive mma are NT apart, which hides the tensor-pipe latency */
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                const uint32_t qoff = swz<D>(warp * 16 + (lane % 16), 2 * ks + lane / 16);
                uint32_t b[NT / 2][4], ah[4], al[4];
#pragma unroll
                for (int np = 0; np < NT / 2; np++)
                    ldsm_x4(b[np], ks_sm + swz<D>(np * 16 + (lane % 8) + (lane / 16) * 8, 2 * ks + (lane / 8) % 2));
                if constexpr (C::QREG) {
#pragma unroll
                    for (int x = 0; x < 4; x++) ah[x] = qa[ks][x];
                } else {
                    ldsm_x4(ah, qh_sm + qoff);
                }
#pragma unroll
                for (int np = 0; np < NT / 2; np++) {
                    mma16816<T>(acc[2 * np], ah, b[np][0], b[np][1]);
                    mma16816<T>(acc[2 * np + 1], ah, b[np][2], b[np][3]);
                }
                ldsm_x4(al, ql_sm + qoff);
#pragma unroll
                for (int np = 0; np < NT / 2; np++) {
                    mma16816<T>(acc[2 * np], al, b[np][0], b[np][1]);
                    mma16816<T>(acc[2 * np + 1], al, b[np][2], b[np][3]);
                }
                if (KSPLIT) {
#pragma unroll
                    for (int np = 0; np < NT / 2; np++)
                        ldsm_x4(b[np], ks_sm + C::KHALF +
                                           swz<D>(np * 16 + (lane % 8) + (lane / 16) * 8, 2 * ks + (lane / 8) % 2));
#pragma unroll
                    for (int np = 0; np < NT / 2; np++) {
                        mma16816<T>(acc[2 * np], ah, b[np][0], b[np][1]);
                        mma16816<T>(acc[2 * np + 1], ah, b[np][2], b[np][3]);
                    }
                }
            }
        }
        /* mask: composite key t is visible to row u when t < nv(u) */
        if (t0 + KT > min(nvA, nvB)) {
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const int t = t0 + n * 8 + 2 * q4;
                if (t >= nvA) acc[n][0] = -INFINITY;
                if (t + 1 >= nvA) acc[n][1] = -INFINITY;
                if (t >= nvB) acc[n][2] = -INFINITY;
                if (t + 1 >= nvB) acc[n][3] = -INFINITY;
            }
        }
        if constexpr (WHOLE) {
            /* the whole tile lies in key block t0 / G */
            /* two independent chains per row: shorter dependencies, few registers */
            float xA = fmaxf(acc[0][0], acc[0][1]), yA = fmaxf(acc[1][0], acc[1][1]);
            float xB = fmaxf(acc[0][2], acc[0][3]), yB = fmaxf(acc[1][2], acc[1][3]);
#pragma unroll
            for (int n = 2; n < NT; n += 2) {
                xA = fmaxf(xA, fmaxf(acc[n][0], acc[n][1])), yA = fmaxf(yA, fmaxf(acc[n + 1][0], acc[n + 1][1]));
                xB = fmaxf(xB, fmaxf(acc[n][2], acc[n][3])), yB = fmaxf(yB, fmaxf(acc[n + 1][2], acc[n + 1][3]));
            }
            xA = fmaxf(xA, yA), xB = fmaxf(xB, yB);
#pragma unroll
            for (int o = 1; o < 4; o <<= 1) {
                xA = fmaxf(xA, __shfl_xor_sync(0xffffffffu, xA, o));
                xB = fmaxf(xB, __shfl_xor_sync(0xffffffffu, xB, o));
            }
            const float nA = fmaxf(mA, xA), nB = fmaxf(mB, xB);
            if (nA != -INFINITY) {
                float u = 0.0f, v = 0.0f;
#pragma unroll
                for (int n = 0; n < NT; n++) u += ex2(acc[n][0] - nA), v += ex2(acc[n][1] - nA);
                sA = sA * ex2(mA - nA) + (u + v), mA = nA;
            }
            if (nB != -INFINITY) {
                float u = 0.0f, v = 0.0f;
#pragma unroll
                for (int n = 0; n < NT; n++) u += ex2(acc[n][2] - nB), v += ex2(acc[n][3] - nB);
                sB = sB * ex2(mB - nB) + (u + v), mB = nB;
            }
            if (last_tile || (t0 + KT) % p.G == 0) {
                const int b = t0 / p.G;
#pragma unroll
                for (int o = 1; o < 4; o <<= 1) {
                    sA += __shfl_xor_sync(0xffffffffu, sA, o);
                    sB += __shfl_xor_sync(0xffffffffu, sB, o);
                }
                if (q4 == 0 && (int64_t)b * p.G < nvA) *part_at(uA, b) = make_float2(mA, sA);
                if (q4 == 0 && (int64_t)b * p.G < nvB) *part_at(uB, b) = make_float2(mB, sB);
                if (q4 == 0) {
                    const int rA = warp * 16 + g;
                    s_tot[rA] = ms_merge(s_tot[rA], make_float2(mA, sA));
                    s_tot[rA + 8] = ms_merge(s_tot[rA + 8], make_float2(mB, sB));
                }
                mA = mB = -INFINITY;
                sA = sB = 0.0f;
            }
        } else {
            /* key blocks smaller than a tile: the masked tile goes through shared memory */
            const int rA = warp * 16 + g;
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const int col = n * 8 + 2 * q4;
                zs[rA * C::ZLD + col] = acc[n][0];
                zs[rA * C::ZLD + col + 1] = acc[n][1];
                zs[(rA + 8) * C::ZLD + col] = acc[n][2];
                zs[(rA + 8) * C::ZLD + col + 1] = acc[n][3];
            }
            __syncthreads();
            const int nblk = KT / p.G;
            for (int x = tid; x < kRows * nblk; x += kScoreThreads) {
                const int r = x / nblk, bl = x % nblk, u = u0 + r;
                const int b = t0 / p.G + bl;
                const int nv = row_nv(p.limit, u, p.nqc, p.cq, p.ck, p.nq, p.nkc);
                if ((int64_t)b * p.G >= nv) continue; /* also rows past nqc (nv = 0) */
                const float *z = zs + r * C::ZLD + bl * p.G;
                float m = -INFINITY, s = 0.0f;
                for (int t = 0; t < p.G; t++) m = fmaxf(m, z[t]);
                for (int t = 0; t < p.G; t++) s += ex2(z[t] - m);
                *part_at(u, b) = make_float2(m, s);
            }
            if (tid < kRows) { /* row tid's total over the tile */
                const float *z = zs + tid * C::ZLD;
                float m = -INFINITY, s = 0.0f;
                for (int t = 0; t < KT; t++) m = fmaxf(m, z[t]);
                if (m != -INFINITY) {
                    for (int t = 0; t < KT; t++) s += ex2(z[t] - m);
                    s_tot[tid] = ms_merge(s_tot[tid], make_float2(m, s));
                }
            }
        }
        __syncthreads(); /* the next iteration's prefetch overwrites this stage (and zs) */
    }
    /* row totals over the chunk, for the rows that see some key of it */
    const int64_t nch = gridDim.y;
    if (tid < kRows && c0 < row_nv(p.limit, u0 + tid, p.nqc, p.cq, p.ck, p.nq, p.nkc))
        p.rowpart[((int64_t)e * p.nqc + u0 + tid) * nch + blockIdx.y] = s_tot[tid];
}

/* ---- host side ---------------------------------------------------------------------------------- */

template <typename T>
us_status launch_pool(const us_tensor *t, int64_t n_tok, int c, int nh, int64_t n_comp, int n_out_heads, int d,
                      float mul, void *hi, void *lo, cudaStream_t stream, us_error *err)
{
    const int64_t threads = (int64_t)n_out_heads * n_comp * (d / 8);
    const unsigned blocks = (unsigned)((threads + kPoolThreads - 1) / kPoolThreads);
    if (aligned16(t))
        pool_kernel<T, true><<<blocks, kPoolThreads, 0, stream>>>((const T *)t->data, t->stride[0], t->stride[1], n_tok,
                                                                  c, nh, n_comp, n_out_heads, d, mul, (T *)hi, (T *)lo);
    else
        pool_kernel<T, false><<<blocks, kPoolThreads, 0, stream>>>((const T *)t->data, t->stride[0], t->stride[1],
                                                                   n_tok, c, nh, n_comp, n_out_heads, d, mul, (T *)hi,
                                                                   (T *)lo);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T, int D, bool KSPLIT, bool WHOLE>
us_status launch_score(const ScoreParams &sp, dim3 grid, cudaStream_t stream, us_error *err)
{
    const int smem = ScoreCfg<D>::smem(KSPLIT, WHOLE);
    US_CUDA_TRY(err, cudaFuncSetAttribute(score_kernel<T, D, KSPLIT, WHOLE>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    score_kernel<T, D, KSPLIT, WHOLE><<<grid, kScoreThreads, smem, stream>>>(sp);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T, int D>
us_status dispatch_score_d(const ScoreParams &sp, dim3 grid, bool ksplit, bool whole, cudaStream_t stream,
                           us_error *err)
{
    if (ksplit)
        return whole ? launch_score<T, D, true, true>(sp, grid, stream, err)
                     : launch_score<T, D, true, false>(sp, grid, stream, err);
    return whole ? launch_score<T, D, false, true>(sp, grid, stream, err)
                 : launch_score<T, D, false, false>(sp, grid, stream, err);
}

template <typename T>
us_status dispatch_score(int d, const ScoreParams &sp, dim3 grid, bool ksplit, bool whole, cudaStream_t stream,
                         us_error *err)
{
    switch (d) {
    case 64: return dispatch_score_d<T, 64>(sp, grid, ksplit, whole, stream, err);
    case 128: return dispatch_score_d<T, 128>(sp, grid, ksplit, whole, stream, err);
    case 256: return dispatch_score_d<T, 256>(sp, grid, ksplit, whole, stream, err);
    }
    return us_error_set(err, US_ERR_UNSUPPORTED, "UniSparse GPU estimation: head dim %d (64, 128, 256)", d);
}

} // namespace

us_status us_cuda_select_unisparse(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    const us_unisparse_params &pp = plan->p;
    const int S = plan->block, cq = pp.cq, ck = pp.ck, d = plan->d, group = plan->group;
    const int ch = pp.ch > 0 ? pp.ch : group;
    const int ne = plan->hq / ch;
    const int kv_per_e = ch > group ? ch / group : 1;
    const int64_t nqc64 = (plan->nq + cq - 1) / cq, nkc64 = (plan->nk + ck - 1) / ck;
    const int R = S / cq, G = S / ck;
    if (plan->dtype != US_BF16 && plan->dtype != US_F16)
        return us_error_set(err, US_ERR_UNSUPPORTED, "UniSparse GPU estimation takes f16 or bf16 (got %s)",
                            us_dtype_name(plan->dtype));
    if (ne != plan->n_heads || ch != plan->heads_per_row)
        return us_error_set(err, US_ERR_INVALID, "UniSparse GPU estimation: plan has %d selection heads of %d, expected %d of %d",
                            plan->n_heads, plan->heads_per_row, ne, ch);
    if (nqc64 >= INT32_MAX / 2 || nkc64 >= INT32_MAX / 2)
        return us_error_set(err, US_ERR_UNSUPPORTED, "UniSparse GPU estimation: too many tokens");
    const int nqc = (int)nqc64, nkc = (int)nkc64;
    int P;
    us_status s = sort_width(plan, &P, err);
    if (s) return s;

    /* keys: straight from K (one token of one KV head per composite key, 16-byte aligned), or pooled */
    const bool ksplit = ck > 1 || kv_per_e > 1;
    const bool kpool = ksplit || !aligned16(&a->k);
    const int nkh = kv_per_e > 1 ? ne : plan->hkv;
    const size_t qbytes = align256((size_t)ne * (size_t)nqc * (size_t)d * 2);
    const size_t kbytes = kpool ? align256((size_t)nkh * (size_t)nkc * (size_t)d * 2) : 0;
    const size_t pbytes = align256((size_t)plan->n_indices * (size_t)R * sizeof(float2));
    /* key chunks per CTA: 4096 composite keys, fewer (down to 128, still a multiple of every tile and
     * key block) while the grid would not give every multiprocessor eight CTAs, about half of which a
     * causal mask leaves idle. Short calls with few estimate heads (Gemma 3 270M: one) otherwise ran
     * on 8-16 CTAs: 0.26 ms at 8K tokens, 80% of the dense kernel's time. */
    int sms = 132;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) (void)cudaGetLastError();
    const int64_t row_tiles = (nqc + kRows - 1) / kRows;
    int chunk = kChunk;
    while (chunk > 128 && row_tiles * ne * ((nkc + chunk - 1) / chunk) < 8 * (int64_t)sms) chunk /= 2;
    while ((nkc + chunk - 1) / chunk > 65535) chunk *= 2;
    const int n_chunks = (nkc + chunk - 1) / chunk;
    const size_t rbytes = align256((size_t)ne * (size_t)nqc * (size_t)n_chunks * sizeof(float2));
    const size_t need = 2 * qbytes + (ksplit ? 2 : 1) * kbytes + pbytes + rbytes;
    /* first call (or a call whose K layout needs pooled keys for the first time) */
    if ((s = ensure_scratch(plan, need, "UniSparse", err))) return s;
    unsigned char *base = (unsigned char *)plan->est_scratch;
    void *qh = base, *ql = base + qbytes;
    void *kh = kpool ? base + 2 * qbytes : NULL;
    void *kl = ksplit ? base + 2 * qbytes + kbytes : NULL;
    float2 *part = (float2 *)(base + 2 * qbytes + (ksplit ? 2 : 1) * kbytes);
    float2 *rowpart = (float2 *)((unsigned char *)part + pbytes);

    /* 1. pooling */
    const float qmul = plan->scale * 1.4426950408889634f; /* the CPU's scale * US_LOG2E, in float */
    if (plan->dtype == US_BF16) {
        s = launch_pool<__nv_bfloat16>(&a->q, plan->nq, cq, ch, nqc, ne, d, qmul, qh, ql, stream, err);
        if (!s && kpool)
            s = launch_pool<__nv_bfloat16>(&a->k, plan->nk, ck, kv_per_e, nkc, nkh, d, 1.0f, kh, kl, stream, err);
    } else {
        s = launch_pool<__half>(&a->q, plan->nq, cq, ch, nqc, ne, d, qmul, qh, ql, stream, err);
        if (!s && kpool)
            s = launch_pool<__half>(&a->k, plan->nk, ck, kv_per_e, nkc, nkh, d, 1.0f, kh, kl, stream, err);
    }
    if (s) return s;

    /* 2. scores */
    ScoreParams sp;
    sp.qh = qh, sp.ql = ql;
    if (kpool) {
        sp.kh = kh, sp.kl = kl;
        sp.k_hs = (int64_t)nkc * d, sp.k_ts = d;
    } else {
        sp.kh = a->k.data, sp.kl = NULL;
        sp.k_hs = a->k.stride[0], sp.k_ts = a->k.stride[1];
    }
    sp.ch = ch, sp.group = group, sp.kv_per_e = kv_per_e;
    sp.nqc = nqc, sp.nkc = nkc, sp.cq = cq, sp.ck = ck, sp.nq = plan->nq;
    sp.G = G, sp.R = R, sp.n_qblocks = plan->n_qblocks;
    sp.chunk = chunk;
    sp.limit = plan->d_limit, sp.row_offset = plan->d_row_offset, sp.part = part, sp.rowpart = rowpart;
    const int KT = d <= 128 ? 64 : 32;
    const bool whole = G >= KT; /* powers of two: G is then a multiple of KT */
    dim3 grid((unsigned)((nqc + kRows - 1) / kRows), (unsigned)n_chunks, (unsigned)ne);
    if (ne > 65535) return us_error_set(err, US_ERR_UNSUPPORTED, "UniSparse GPU estimation: %d estimate heads", ne);
    s = plan->dtype == US_BF16 ? dispatch_score<__nv_bfloat16>(d, sp, grid, ksplit, whole, stream, err)
                               : dispatch_score<__half>(d, sp, grid, ksplit, whole, stream, err);
    if (s) return s;

    /* 3. selection */
    SelectParams sel;
    sel.part = part, sel.rowpart = rowpart, sel.n_chunks = n_chunks, sel.chunk = chunk;
    sel.limit = plan->d_limit, sel.row_offset = plan->d_row_offset, sel.visible = plan->d_visible;
    sel.counts = plan->d_counts, sel.indices = plan->d_indices;
    sel.n_qblocks = plan->n_qblocks, sel.nqc = nqc, sel.nkc = nkc, sel.cq = cq, sel.ck = ck, sel.R = R, sel.G = G,
    sel.S = S;
    sel.nq = plan->nq, sel.q_offset = plan->q_offset;
    sel.tau = pp.tau;
    sel.sink_blocks = pp.sink_blocks, sel.local_blocks = pp.local_blocks;
    sel.min_blocks = pp.min_blocks, sel.max_blocks = pp.max_blocks;
    sel.row_union = pp.row_union;
    sel.mode = NULL, sel.mode_want = 0;
    return launch_select_by_mass(sel, (int64_t)plan->n_heads * plan->n_qblocks, P, stream, err);
}
