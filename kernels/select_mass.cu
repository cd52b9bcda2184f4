/* select_mass.cu: the cumulative-mass block selection on the device, shared by the UniSparse,
 * XAttention and FlexPrefill (query-aware) estimators; it reproduces us_select_row_by_mass and
 * us_pooled_block_importance's averaging (attention/selection.c, block_scores.c).
 *
 * One CTA (256 threads) per selection row (e, query block i). It merges the chunk totals into each
 * composite row's max and sum, averages the normalised mass of the block's rows per key block
 * (coalesced reads, shuffle sums), then applies the rule: forced sink / diagonal / local blocks,
 * the other visible blocks sorted by importance (bitonic sort of 64-bit keys importance:~index in
 * shared memory, warp-synchronous stages for distances <= 32), a prefix sum in double to the first
 * count whose mass reaches tau, min/max floors, and an ascending compaction into the us_selection
 * layout. With the row-union rule each composite row makes its own cover and the row keeps their
 * union; for rows of up to kWarpCoverMaxP blocks each warp makes the covers of its composite rows
 * alone (its own copy of the keys, warp-synchronous sort and scans), so the R covers of a block row
 * run side by side instead of one after another with block barriers: at 8K tokens (64 blocks per
 * row, 8 covers) that was 45 of the estimate's 81 us on an H100. */
#include "estimate_common.cuh"

namespace us_est {

namespace {

template <typename V> __device__ __forceinline__ V warp_sum(V v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename V> __device__ __forceinline__ V warp_excl_scan(V v)
{
    const int lane = threadIdx.x % 32;
    V x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        V y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    return x - v;
}

/* The row-union covers of one block row, one warp per composite row (see the file comment). keys:
 * [warps][P]; flag: [P], the forced blocks already set. Same keys, order and cumulative rule as the
 * block-wide path below, so the same blocks are kept. */
__device__ void covers_by_warp(const SelectParams &p, const float2 *part, int vis, int P, int Ri, int n_sink, int f_lo,
                               int d_last, const float *s_max, const float *s_coef, const int *s_nb,
                               unsigned long long *keys_all, int *flag)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32, R = p.R;
    unsigned long long *keys = keys_all + (size_t)warp * P;
    const bool keep_all = p.tau >= 1.0f;
    const double tau = (double)p.tau;
    const int ceiling = p.max_blocks > 0 ? p.max_blocks : vis;
    for (int pass = warp; pass < Ri; pass += nw) {
        const float coef = s_coef[pass] * (float)Ri;
        double fmass = 0.0;
        int fcount = 0;
        for (int b = lane; b < P; b += 32) {
            unsigned long long key = 0ull;
            if (b < vis) {
                float imp = 0.0f;
                if (b < s_nb[pass]) {
                    const float2 v = part[(int64_t)b * R + pass];
                    imp = v.y * ex2(v.x - s_max[pass]) * coef;
                }
                if (b < n_sink || (b >= f_lo && b <= d_last)) {
                    fmass += (double)imp;
                    fcount++;
                } else {
                    key = ((unsigned long long)__float_as_uint(imp) << 32) | (unsigned long long)(0xffffffffu - (unsigned)b);
                }
            }
            keys[b] = key;
        }
        fmass = warp_sum(fmass);
        fcount = warp_sum(fcount);
        const int n_cand = vis - fcount;
        __syncwarp();
        /* bitonic sort, descending (ties: ascending index) */
        for (int k = 2; k <= P; k <<= 1)
            for (int jj = k >> 1; jj > 0; jj >>= 1) {
                for (int t = lane; t < P / 2; t += 32) {
                    const int a = 2 * t - (t & (jj - 1)), b = a + jj;
                    const unsigned long long x = keys[a], y = keys[b];
                    if ((x < y) == ((a & k) == 0)) keys[a] = y, keys[b] = x;
                }
                __syncwarp();
            }
        /* the smallest count of candidates whose mass, added to the forced blocks', reaches tau */
        int ktau = (keep_all || fmass < tau) ? n_cand : 0;
        if (!keep_all && fmass < tau) {
            const int items = (n_cand + 31) / 32;
            const int c_begin = min(lane * items, n_cand), c_end = min(c_begin + items, n_cand);
            double local = 0.0;
            for (int c = c_begin; c < c_end; c++) local += (double)__uint_as_float((unsigned)(keys[c] >> 32));
            double run = fmass + warp_excl_scan(local);
            int found = n_cand;
            for (int c = c_begin; c < c_end; c++) {
                run += (double)__uint_as_float((unsigned)(keys[c] >> 32));
                if (run >= tau) {
                    found = c + 1;
                    break;
                }
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) found = min(found, __shfl_xor_sync(0xffffffffu, found, o));
            ktau = found;
        }
        int K = max(ktau, p.min_blocks - fcount);
        K = min(K, ceiling - fcount);
        K = max(0, min(K, n_cand));
        /* several warps may flag one block: atomics keep the writes well defined */
        for (int c = lane; c < K; c += 32) atomicOr(&flag[0xffffffffu - (unsigned)(keys[c] & 0xffffffffull)], 1);
        __syncwarp(); /* the next pass overwrites keys */
    }
}

__global__ void __launch_bounds__(kSelThreads) select_kernel(const SelectParams p)
{
    extern __shared__ __align__(128) unsigned char sel_smem[];
    __shared__ float2 red[kSelThreads];
    __shared__ float s_max[128], s_coef[128];
    __shared__ int s_nb[128], s_nch[128];
    __shared__ double s_dsh[32];
    __shared__ int s_ish[32];
    __shared__ int s_ktau;

    const int tid = threadIdx.x;
    const int64_t r = blockIdx.x;
    if (p.mode && p.mode[r / p.n_qblocks] != p.mode_want) return; /* a row of the other kind */
    const int i = (int)(r % p.n_qblocks);
    const int vis = p.visible[i];
    int P = 1;
    while (P < vis) P <<= 1;
    unsigned long long *keys = reinterpret_cast<unsigned long long *>(sel_smem); /* [P], or [warps][P] */
    int *flag = reinterpret_cast<int *>(keys + (p.warp_covers ? (kSelThreads / 32) * P : P)); /* [P] */
    const int64_t row_off = p.row_offset[r];
    const int R = p.R, u0 = i * R, Ri = min(R, p.nqc - u0);
    const float2 *part = p.part + row_off * R;
    const int e = (int)(r / p.n_qblocks);
    const float2 *rowpart = p.rowpart + ((int64_t)e * p.nqc + u0) * p.n_chunks;

    /* composite rows of the block: visible key blocks, then max and sum over all of them (from the
     * per-chunk totals of the score kernel) */
    if (tid < Ri) {
        int nv = row_nv(p.limit, u0 + tid, p.nqc, p.cq, p.ck, p.nq, p.nkc);
        s_nb[tid] = (nv + p.G - 1) / p.G;
        s_nch[tid] = (nv + p.chunk - 1) / p.chunk;
    }
    __syncthreads();
    {
        const int ur = tid % R; /* kSelThreads % R == 0: each thread stays on one row */
        float2 acc = make_float2(-INFINITY, 0.0f);
        if (ur < Ri) {
            const int nch = s_nch[ur];
            for (int k = tid / R; k < nch; k += kSelThreads / R)
                acc = ms_merge(acc, rowpart[(int64_t)ur * p.n_chunks + k]);
        }
        red[tid] = acc;
    }
    __syncthreads();
    if (tid < Ri) {
        float2 acc = red[tid];
        for (int x = tid + R; x < kSelThreads; x += R) acc = ms_merge(acc, red[x]);
        s_max[tid] = acc.x;
        s_coef[tid] = (1.0f / (float)Ri) / acc.y;
    }
    __syncthreads();

    /* importance, forced blocks, sort keys (importance bits : ~index; forced and padding = 0) */
    const int64_t p0 = p.q_offset + (int64_t)i * p.S;
    const int64_t p1 = p.q_offset + min((int64_t)(i + 1) * p.S, p.nq) - 1;
    const int d_last = (int)min(p1 / p.S, (int64_t)vis - 1);
    const int d_first = (int)min(p0 / p.S, (int64_t)d_last);
    const int f_lo = max(0, d_first - p.local_blocks), n_sink = min(p.sink_blocks, vis);
    /* kept flags start with the forced blocks; each pass adds its candidates (one pass, or one per
     * composite row with the row-union rule) */
    for (int b = tid; b < vis; b += kSelThreads) flag[b] = b < n_sink || (b >= f_lo && b <= d_last);
    __syncthreads();
    if (p.warp_covers) covers_by_warp(p, part, vis, P, Ri, n_sink, f_lo, d_last, s_max, s_coef, s_nb, keys, flag);
    const int passes = p.warp_covers ? 0 : p.row_union ? Ri : 1;
    for (int pass = 0; pass < passes; pass++) {
        double fmass = 0.0;
        int fcount = 0;
        auto set_key = [&](int b, float imp) {
            unsigned long long key = 0ull;
            if (b < vis) {
                const bool forced = b < n_sink || (b >= f_lo && b <= d_last);
                if (forced) {
                    fmass += (double)imp;
                    fcount++;
                } else {
                    key = ((unsigned long long)__float_as_uint(imp) << 32) | (unsigned long long)(0xffffffffu - (unsigned)b);
                }
            }
            keys[b] = key;
        };
        if (p.row_union) {
            /* this pass's composite row alone, normalised to its own total */
            const float coef = s_coef[pass] * (float)Ri;
            for (int b = tid; b < P; b += kSelThreads) {
                float imp = 0.0f;
                if (b < vis && b < s_nb[pass]) {
                    const float2 v = part[(int64_t)b * R + pass];
                    imp = v.y * ex2(v.x - s_max[pass]) * coef;
                }
                set_key(b, imp);
            }
        } else if (R <= 32) {
            /* coalesced: thread x reads entry (b, ur) = (x / R, x % R); the R lanes of b sum by shuffles */
            for (int x0 = 0; x0 < P * R; x0 += kSelThreads) {
                const int x = x0 + tid, b = x / R, ur = x % R;
                float c = 0.0f;
                if (b < vis && ur < Ri && b < s_nb[ur]) {
                    const float2 v = part[x];
                    c = v.y * ex2(v.x - s_max[ur]) * s_coef[ur];
                }
                for (int o = R / 2; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
                if (ur == 0 && b < P) set_key(b, c);
            }
        } else {
            for (int b = tid; b < P; b += kSelThreads) {
                float imp = 0.0f;
                if (b < vis)
                    for (int ur = 0; ur < Ri; ur++)
                        if (b < s_nb[ur]) {
                            const float2 v = part[(int64_t)b * R + ur];
                            imp += v.y * ex2(v.x - s_max[ur]) * s_coef[ur];
                        }
                set_key(b, imp);
            }
        }
        {
            double ft;
            int fc;
            (void)block_excl_scan<double>(fmass, s_dsh, &ft);
            (void)block_excl_scan<int>(fcount, s_ish, &fc);
            fmass = ft, fcount = fc;
        }
        const int n_cand = vis - fcount;

        /* bitonic sort, descending (ties: ascending index). A stage of distance jj <= 32 pairs
         * elements inside the 64-element segment of one warp (threads t .. t + 31 own elements
         * 2 t' - (t' & (jj - 1)) and that plus jj), so only stages of larger distance need the block. */
        for (int k = 2; k <= P; k <<= 1)
            for (int jj = k >> 1; jj > 0; jj >>= 1) {
                for (int t = tid; t < P / 2; t += kSelThreads) {
                    const int a = 2 * t - (t & (jj - 1)), b = a + jj;
                    const unsigned long long x = keys[a], y = keys[b];
                    if ((x < y) == ((a & k) == 0)) keys[a] = y, keys[b] = x;
                }
                const int next = jj > 1 ? jj >> 1 : k; /* distance of the next stage */
                /* a stage of distance > 32 writes across warps' segments, so the stage after it needs
                 * the block barrier too, whatever its own distance */
                if (next > 32 || jj > 32)
                    __syncthreads();
                else
                    __syncwarp();
            }
        __syncthreads();

        /* the smallest count of candidates whose mass, added to the forced blocks', reaches tau */
        const bool keep_all = p.tau >= 1.0f;
        const double tau = (double)p.tau;
        if (tid == 0) s_ktau = (keep_all || fmass < tau) ? n_cand : 0;
        __syncthreads();
        if (!keep_all && fmass < tau) {
            const int items = (n_cand + kSelThreads - 1) / kSelThreads;
            const int c_begin = min(tid * items, n_cand), c_end = min(c_begin + items, n_cand);
            double local = 0.0, total;
            for (int c = c_begin; c < c_end; c++) local += (double)__uint_as_float((unsigned)(keys[c] >> 32));
            double run = fmass + block_excl_scan<double>(local, s_dsh, &total);
            for (int c = c_begin; c < c_end; c++) {
                run += (double)__uint_as_float((unsigned)(keys[c] >> 32));
                if (run >= tau) {
                    atomicMin(&s_ktau, c + 1);
                    break;
                }
            }
        }
        __syncthreads();
        const int ceiling = p.max_blocks > 0 ? p.max_blocks : vis;
        int K = max(s_ktau, p.min_blocks - fcount);
        K = min(K, ceiling - fcount);
        K = max(0, min(K, n_cand));

        /* this pass's candidates join the kept flags */
        for (int c = tid; c < K; c += kSelThreads) flag[0xffffffffu - (unsigned)(keys[c] & 0xffffffffull)] = 1;
        __syncthreads(); /* keys, s_ktau and the scans are reused by the next pass */
    }
    __syncthreads();
    {
        const int items = (vis + kSelThreads - 1) / kSelThreads;
        const int b_begin = min(tid * items, vis), b_end = min(b_begin + items, vis);
        int local = 0, total;
        for (int b = b_begin; b < b_end; b++) local += flag[b];
        int pos = block_excl_scan<int>(local, s_ish, &total);
        int32_t *out = p.indices + row_off;
        for (int b = b_begin; b < b_end; b++)
            if (flag[b]) out[pos++] = b;
        if (tid == 0) p.counts[r] = total;
    }
}

} // namespace

us_status launch_select_by_mass(const SelectParams &params, int64_t rows, int P, cudaStream_t stream, us_error *err)
{
    SelectParams p = params;
    p.warp_covers = p.row_union && P <= kWarpCoverMaxP;
    const int smem = p.warp_covers ? select_smem_bytes_warp_covers(P) : select_smem_bytes(P);
    US_CUDA_TRY(err, cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    select_kernel<<<(unsigned)rows, kSelThreads, smem, stream>>>(p);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

} // namespace us_est
