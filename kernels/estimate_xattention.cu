/* estimate_xattention.cu: the XAttention baseline's estimation and selection on the device
 * (reproduces attention/select_xattention.c on the same inputs).
 *
 * With stride s, composite query u of head h is the reversed concatenation of its tokens
 * (q_{us+s-1}, ..., q_{us}) and composite key t the concatenation (k_{ts}, ..., k_{ts+s-1}), so the
 * antidiagonal score is one dot product of length s*d:
 *   z(u, t) = sum_{m<s} q_{us+s-1-m} . k_{ts+m}  (times scale / s * log2 e).
 * score_kernel computes it as a GEMM whose K dimension runs over (phase m, 64-wide slice of d):
 * one CTA per (128 composite queries, chunk of 4096 composite keys, query head), 4 warps of 32
 * rows (each K fragment read from shared memory feeds two mma.sync m16n8k16); per 64-key tile,
 * s * d / 16 k-steps, the q and k slices of each step copied with cp.async into a 3-stage ring
 * (XOR-swizzled 16-byte chunks, ldmatrix).
 * Tokens past the end are zeros, as the CPU's concatenation pads them. Inputs are bf16/f16, so q.k
 * is exact per product and accumulates in fp32; the scale is applied to the sum (the CPU scales q
 * first: the two differ by fp32 rounding only). Each row is masked at its visible composite-key
 * prefix, and the tile is reduced per (row, key block of G = S / s composite keys) to a base-2
 * partial (max, sum of 2^(z - max)) in the selection's layout, in registers with quad shuffles
 * (G = 4, half an n8-tile, goes through a shared-memory tile), plus each row's (max, sum) over the
 * chunk of keys (4096 composite keys, fewer at short lengths so that the grid fills the GPU);
 * the shared rule (select_mass.cu) then averages the rows' normalised masses per block and keeps
 * sink + diagonal and the heaviest blocks up to xattn_tau.
 *
 * Measured on an H100 (bf16, causal, 32 / 8 heads, d 128, s = 8, mixed input): 0.39 ms at 8K,
 * 5.7 ms at 32K, 68.5 ms at 128K (about 130 TFLOP/s on the antidiagonal products; a 64-row tile
 * with the per-block reduction through shared memory took 0.67, 6.8 and 93 ms).
 *
 * Scratch: the partials, n_indices * (S / s) float2 (one selection row per query head: about
 * 2.2 GB at 128K tokens, 32 heads, S = 128, s = 8), and the chunk totals. Cost: about
 * N^2 d Hq / (2 s) multiply-adds under a causal mask, 8 times UniSparse's default estimate for
 * 32 / 8 heads (cq 16, one estimate per KV head) at s = 8.
 */
#include "estimate_common.cuh"

namespace {

using namespace us_est;

constexpr int kXRows = 128;     /* composite queries per CTA: 4 warps x 32 */
constexpr int kXThreads = 128;
constexpr int kXKeys = 64;      /* composite keys per tile */
constexpr int kXStages = 3;
constexpr int kXChunk = 4096;   /* composite keys per CTA (a multiple of the tile and of every block) */
constexpr int kXQSlice = kXRows * 64 * 2; /* bytes of one 128 x 64 slice of q */
constexpr int kXKSlice = kXKeys * 64 * 2; /* bytes of one 64 x 64 slice of k */
constexpr int kXStage = kXQSlice + kXKSlice;
constexpr int kZld = kXKeys + 1; /* floats per row of the score tile */

struct XParams {
    const void *q, *k;
    int64_t q_hs, q_ts, k_hs, k_ts; /* strides, elements */
    int group, st, d;
    int nq, nk, nqc, nkc;
    int R, G, n_qblocks, chunk;
    float qmul; /* scale / s * log2 e, the CPU's float expression */
    const int32_t *limit;
    const int64_t *row_offset;
    float2 *part;    /* [(row_offset[h, i] + b) * R + (u - i * R)] */
    float2 *rowpart; /* [(h * nqc + u) * gridDim.y + chunk] */
};

/* Byte offset of 16-byte chunk c of row r in a [rows][64] slice. */
__device__ __forceinline__ uint32_t swz64(int r, int c) { return (uint32_t)(r * 128 + ((c ^ (r & 7)) << 4)); }

/* 16 bytes (8 elements) of one row into shared memory, zeros when !ok. */
template <bool VEC> __device__ __forceinline__ void copy16(uint32_t dst, const uint16_t *src, bool ok)
{
    if (VEC) {
        cp_async16(dst, src, ok ? 16 : 0); /* src stays a valid address even when nothing is read */
    } else {
        /* rows that are not 16-byte aligned: plain loads (the copy is then synchronous) */
        uint32_t w[4] = {0, 0, 0, 0};
        if (ok)
            for (int x = 0; x < 4; x++) w[x] = (uint32_t)src[2 * x] | ((uint32_t)src[2 * x + 1] << 16);
        asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(w[0]), "r"(w[1]), "r"(w[2]),
                     "r"(w[3]));
    }
}

/* GT: composite keys per block when the per-block reduction runs in registers (8, 16, 32), 0 for
 * the shared-memory path. */
template <typename T, bool VEC, int GT> __global__ void __launch_bounds__(kXThreads) score_kernel(const XParams p)
{
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ float2 s_tot[kXRows];

    const int u0 = blockIdx.x * kXRows, h = blockIdx.z;
    const int last_row = min(u0 + kXRows, p.nqc) - 1;
    const int nv_max = row_nv(p.limit, last_row, p.nqc, p.st, p.st, p.nq, p.nkc);
    const int c0 = blockIdx.y * p.chunk;
    if (c0 >= nv_max) return; /* no row of the tile sees this chunk */
    const int c1 = min(c0 + p.chunk, nv_max);

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, q4 = lane % 4;
    /* this thread's rows: m-tile mt, x = 0 / 1: composite row u0 + warp * 32 + mt * 16 + g + 8 x */
    int nv[2][2], nv_max_warp = 0;
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int x = 0; x < 2; x++) {
            nv[mt][x] = row_nv(p.limit, u0 + warp * 32 + mt * 16 + g + 8 * x, p.nqc, p.st, p.st, p.nq, p.nkc);
            nv_max_warp = max(nv_max_warp, nv[mt][x]);
        }
    nv_max_warp = __reduce_max_sync(0xffffffffu, nv_max_warp);
    const uint32_t st_sm = smem_u32(smem);
    float *zs = reinterpret_cast<float *>(smem + kXStages * kXStage); /* [kXRows][kZld] */
    if (tid < kXRows) s_tot[tid] = make_float2(-INFINITY, 0.0f); /* ordered by the loop's barriers */

    const uint16_t *qh = (const uint16_t *)p.q + (int64_t)h * p.q_hs;
    const uint16_t *kh = (const uint16_t *)p.k + (int64_t)(h / p.group) * p.k_hs;
    const int slices = p.d / 64, steps = p.st * slices;
    const int n_tiles = (c1 - c0 + kXKeys - 1) / kXKeys;
    const int total = n_tiles * steps;

    /* step x of tile j: phase m = x / slices, d-slice c = x % slices */
    auto issue = [&](int gs) {
        if (gs < total) {
            const int j = gs / steps, x = gs % steps, m = x / slices, c = x % slices;
            const uint32_t qd = st_sm + (gs % kXStages) * kXStage, kd = qd + kXQSlice;
            const int t0 = c0 + j * kXKeys;
            for (int e = tid; e < (kXRows + kXKeys) * 8; e += kXThreads) {
                const int ch = e % 8;
                if (e < kXRows * 8) { /* q: composite row u0 + r, token (u0 + r) s + s - 1 - m */
                    const int r = e / 8;
                    const int u = u0 + r;
                    const int64_t tok = (int64_t)u * p.st + p.st - 1 - m;
                    const bool ok = u < p.nqc && tok < p.nq;
                    copy16<VEC>(qd + swz64(r, ch), qh + (ok ? tok * p.q_ts + c * 64 + ch * 8 : 0), ok);
                } else { /* k: composite key t0 + r, token (t0 + r) s + m */
                    const int r = e / 8 - kXRows;
                    const int t = t0 + r;
                    const int64_t tok = (int64_t)t * p.st + m;
                    const bool ok = t < c1 && tok < p.nk;
                    copy16<VEC>(kd + swz64(r, ch), kh + (ok ? tok * p.k_ts + c * 64 + ch * 8 : 0), ok);
                }
            }
        }
        cp_async_commit(); /* an empty group past the end keeps the wait count uniform */
    };

    float acc[2][8][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int n = 0; n < 8; n++) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
    issue(0);
    issue(1);
    for (int gs = 0; gs < total; gs++) {
        issue(gs + 2);
        cp_async_wait<2>();
        __syncthreads();
        const int j = gs / steps, t0 = c0 + j * kXKeys;
        if (t0 < nv_max_warp) { /* some row of the warp sees the tile */
            const uint32_t qd = st_sm + (gs % kXStages) * kXStage, kd = qd + kXQSlice;
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                uint32_t a[2][4], b[4][4];
#pragma unroll
                for (int mt = 0; mt < 2; mt++) ldsm_x4(a[mt], qd + swz64(warp * 32 + mt * 16 + (lane % 16), 2 * kk + lane / 16));
#pragma unroll
                for (int np = 0; np < 4; np++)
                    ldsm_x4(b[np], kd + swz64(np * 16 + (lane % 8) + (lane / 16) * 8, 2 * kk + (lane / 8) % 2));
#pragma unroll
                for (int np = 0; np < 4; np++)
#pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        mma16816<T>(acc[mt][2 * np], a[mt], b[np][0], b[np][1]);
                        mma16816<T>(acc[mt][2 * np + 1], a[mt], b[np][2], b[np][3]);
                    }
            }
        }
        if (GT > 0 && gs % steps == steps - 1) {
            /* the tile's scores are complete: scale, mask at each row's visible prefix and reduce
             * per key block in registers: a block of GT keys is GT / 8 n8-tiles of each row, spread
             * over the 4 lanes of a quad */
            constexpr int GB = GT > 0 ? GT : 8; /* (GT = 0 never takes this branch) */
            constexpr int NB = kXKeys / GB, NPB = GB / 8;
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    const int r = warp * 32 + mt * 16 + g + 8 * x, u = u0 + r, nvr = nv[mt][x];
                    float2 tot = make_float2(-INFINITY, 0.0f);
#pragma unroll
                    for (int bl = 0; bl < NB; bl++) {
                        float z[2 * NPB], m = -INFINITY;
#pragma unroll
                        for (int q = 0; q < NPB; q++) {
                            const int n = bl * NPB + q, t = t0 + n * 8 + 2 * q4;
                            z[2 * q] = t < nvr ? acc[mt][n][2 * x] * p.qmul : -INFINITY;
                            z[2 * q + 1] = t + 1 < nvr ? acc[mt][n][2 * x + 1] * p.qmul : -INFINITY;
                            m = fmaxf(m, fmaxf(z[2 * q], z[2 * q + 1]));
                        }
                        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
                        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
                        const float mm = m == -INFINITY ? 0.0f : m; /* a fully masked block sums to 0 */
                        float sum = 0.0f;
#pragma unroll
                        for (int q = 0; q < 2 * NPB; q++) sum += ex2(z[q] - mm);
                        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
                        const int b = t0 / GB + bl;
                        if (q4 == 0 && (int64_t)b * GB < nvr) {
                            const int i = u / p.R;
                            p.part[(p.row_offset[(int64_t)h * p.n_qblocks + i] + b) * p.R + (u - i * p.R)] =
                                make_float2(m, sum);
                        }
                        tot = ms_merge(tot, make_float2(m, sum));
                    }
                    /* each row belongs to one quad: its lane 0 alone updates the row's total */
                    if (q4 == 0 && tot.x != -INFINITY) s_tot[r] = ms_merge(s_tot[r], tot);
                }
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int n = 0; n < 8; n++) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
        } else if (GT == 0 && gs % steps == steps - 1) {
            /* blocks smaller than an n8-tile (G = 4): the masked tile goes through shared memory */
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                const int rA = warp * 32 + mt * 16 + g;
#pragma unroll
                for (int n = 0; n < 8; n++) {
                    const int t = t0 + n * 8 + 2 * q4, col = n * 8 + 2 * q4;
                    zs[rA * kZld + col] = t < nv[mt][0] ? acc[mt][n][0] * p.qmul : -INFINITY;
                    zs[rA * kZld + col + 1] = t + 1 < nv[mt][0] ? acc[mt][n][1] * p.qmul : -INFINITY;
                    zs[(rA + 8) * kZld + col] = t < nv[mt][1] ? acc[mt][n][2] * p.qmul : -INFINITY;
                    zs[(rA + 8) * kZld + col + 1] = t + 1 < nv[mt][1] ? acc[mt][n][3] * p.qmul : -INFINITY;
                    acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
                }
            }
            __syncthreads();
            const int nblk = kXKeys / p.G;
            for (int e = tid; e < kXRows * nblk; e += kXThreads) {
                const int r = e / nblk, bl = e % nblk, u = u0 + r;
                const int b = t0 / p.G + bl;
                const int nvu = row_nv(p.limit, u, p.nqc, p.st, p.st, p.nq, p.nkc);
                if ((int64_t)b * p.G >= nvu) continue; /* also rows past nqc (nv = 0) */
                const float *z = zs + r * kZld + bl * p.G;
                float m = -INFINITY, s = 0.0f;
                for (int t = 0; t < p.G; t++) m = fmaxf(m, z[t]);
                for (int t = 0; t < p.G; t++) s += ex2(z[t] - m);
                const int i = u / p.R;
                p.part[(p.row_offset[(int64_t)h * p.n_qblocks + i] + b) * p.R + (u - i * p.R)] = make_float2(m, s);
            }
            if (tid < kXRows) { /* row tid's total over the tile */
                const float *z = zs + tid * kZld;
                float m = -INFINITY, s = 0.0f;
                for (int t = 0; t < kXKeys; t++) m = fmaxf(m, z[t]);
                if (m != -INFINITY) {
                    for (int t = 0; t < kXKeys; t++) s += ex2(z[t] - m);
                    s_tot[tid] = ms_merge(s_tot[tid], make_float2(m, s));
                }
            }
        }
        __syncthreads(); /* the next issue overwrites this stage; zs is rewritten a tile later */
    }
    const int64_t nch = gridDim.y;
    if (tid < kXRows && c0 < row_nv(p.limit, u0 + tid, p.nqc, p.st, p.st, p.nq, p.nkc))
        p.rowpart[((int64_t)h * p.nqc + u0 + tid) * nch + blockIdx.y] = s_tot[tid];
}

template <typename T, bool VEC, int GT>
us_status launch_g(const XParams &xp, dim3 grid, cudaStream_t stream, us_error *err)
{
    const int smem = kXStages * kXStage + (GT == 0 ? kXRows * kZld * (int)sizeof(float) : 0);
    US_CUDA_TRY(err, cudaFuncSetAttribute(score_kernel<T, VEC, GT>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    score_kernel<T, VEC, GT><<<grid, kXThreads, smem, stream>>>(xp);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T, bool VEC> us_status launch_v(const XParams &xp, dim3 grid, cudaStream_t stream, us_error *err)
{
    switch (xp.G) {
    case 8: return launch_g<T, VEC, 8>(xp, grid, stream, err);
    case 16: return launch_g<T, VEC, 16>(xp, grid, stream, err);
    case 32: return launch_g<T, VEC, 32>(xp, grid, stream, err);
    }
    return launch_g<T, VEC, 0>(xp, grid, stream, err);
}

template <typename T>
us_status launch_score(const XParams &xp, dim3 grid, bool vec, cudaStream_t stream, us_error *err)
{
    return vec ? launch_v<T, true>(xp, grid, stream, err) : launch_v<T, false>(xp, grid, stream, err);
}

} // namespace

us_status us_cuda_select_xattention(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    const us_unisparse_params &pp = plan->p;
    const int S = plan->block, st = pp.xattn_stride, d = plan->d;
    if (plan->n_heads != plan->hq || plan->heads_per_row != 1)
        return us_error_set(err, US_ERR_INVALID, "XAttention GPU estimation: the plan must have one selection head per query head");
    if (d % 64 != 0)
        return us_error_set(err, US_ERR_UNSUPPORTED, "XAttention GPU estimation: head dim %d (64, 128, 256)", d);
    if (S % st != 0 || kXKeys % (S / st) != 0)
        return us_error_set(err, US_ERR_UNSUPPORTED, "XAttention GPU estimation: block %d with stride %d", S, st);
    if (plan->hq > 65535) return us_error_set(err, US_ERR_UNSUPPORTED, "XAttention GPU estimation: %d heads", plan->hq);
    const int64_t nqc64 = (plan->nq + st - 1) / st, nkc64 = (plan->nk + st - 1) / st;
    if (nqc64 >= INT32_MAX / 2 || nkc64 >= INT32_MAX / 2)
        return us_error_set(err, US_ERR_UNSUPPORTED, "XAttention GPU estimation: too many tokens");
    const int nqc = (int)nqc64, nkc = (int)nkc64, R = S / st;
    int P;
    us_status s = sort_width(plan, &P, err);
    if (s) return s;
    /* key chunks per CTA: 4096 composite keys, fewer (down to 256) while the grid would not give
     * every multiprocessor four CTAs (short sequences) */
    int sms = 132;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) (void)cudaGetLastError();
    const int64_t row_tiles = (nqc + kXRows - 1) / kXRows;
    int chunk = kXChunk;
    while (chunk > 256 && row_tiles * plan->hq * ((nkc + chunk - 1) / chunk) < 4 * (int64_t)sms) chunk /= 2;
    while ((nkc + chunk - 1) / chunk > 65535) chunk *= 2;
    const int n_chunks = (nkc + chunk - 1) / chunk;
    const size_t pbytes = align256((size_t)plan->n_indices * (size_t)R * sizeof(float2));
    const size_t rbytes = align256((size_t)plan->hq * (size_t)nqc * (size_t)n_chunks * sizeof(float2));
    if ((s = ensure_scratch(plan, pbytes + rbytes, "XAttention", err))) return s;
    float2 *part = (float2 *)plan->est_scratch;
    float2 *rowpart = (float2 *)((unsigned char *)plan->est_scratch + pbytes);

    XParams xp;
    xp.q = a->q.data, xp.k = a->k.data;
    xp.q_hs = a->q.stride[0], xp.q_ts = a->q.stride[1], xp.k_hs = a->k.stride[0], xp.k_ts = a->k.stride[1];
    xp.group = plan->group, xp.st = st, xp.d = d;
    xp.nq = (int)plan->nq, xp.nk = (int)plan->nk, xp.nqc = nqc, xp.nkc = nkc;
    xp.R = R, xp.G = R, xp.n_qblocks = plan->n_qblocks, xp.chunk = chunk;
    xp.qmul = plan->scale / (float)st * 1.4426950408889634f;
    xp.limit = plan->d_limit, xp.row_offset = plan->d_row_offset, xp.part = part, xp.rowpart = rowpart;
    const bool vec = aligned16(&a->q) && aligned16(&a->k);
    dim3 grid((unsigned)((nqc + kXRows - 1) / kXRows), (unsigned)n_chunks, (unsigned)plan->hq);
    s = plan->dtype == US_BF16 ? launch_score<__nv_bfloat16>(xp, grid, vec, stream, err)
                               : launch_score<__half>(xp, grid, vec, stream, err);
    if (s) return s;

    SelectParams sel;
    sel.part = part, sel.rowpart = rowpart, sel.n_chunks = n_chunks, sel.chunk = chunk;
    sel.limit = plan->d_limit, sel.row_offset = plan->d_row_offset, sel.visible = plan->d_visible;
    sel.counts = plan->d_counts, sel.indices = plan->d_indices;
    sel.n_qblocks = plan->n_qblocks, sel.nqc = nqc, sel.nkc = nkc, sel.cq = st, sel.ck = st, sel.R = R, sel.G = R;
    sel.S = S;
    sel.nq = plan->nq, sel.q_offset = plan->q_offset;
    sel.tau = pp.xattn_tau; /* >= 1 keeps everything, as on the CPU */
    sel.sink_blocks = pp.sink_blocks > 1 ? pp.sink_blocks : 1, sel.local_blocks = pp.local_blocks;
    sel.min_blocks = pp.min_blocks, sel.max_blocks = pp.max_blocks;
    sel.row_union = 0;
    sel.mode = NULL, sel.mode_want = 0;
    return launch_select_by_mass(sel, (int64_t)plan->n_heads * plan->n_qblocks, P, stream, err);
}
