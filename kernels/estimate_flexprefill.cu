/* estimate_flexprefill.cu: the FlexPrefill baseline's estimation and selection on the device
 * (reproduces attention/select_flexprefill.c and the vertical-slash pieces of last_queries.c).
 *
 * Every step runs for every query head, and a head's rows are written by the query-aware or the
 * vertical-slash kernels according to the pattern decided on the device (mode[h]), so the call
 * queues a fixed sequence of kernels and needs no host synchronisation:
 *
 * 1. kmean_kernel: block-mean keys kb [Hkv, nkb, d] in fp32, summed in the CPU's order.
 * 2. sample_kernel<pass 0>: the exact scores of the last n <= 128 queries (8 warps x 16 rows,
 *    mma.sync m16n8k16 from shared memory, K tiles of 64 keys through a 2-stage cp.async ring)
 *    over one chunk of keys; each row's (max, sum) in base 2 per chunk.
 *    sample_kernel<pass 1>: the same scores again, now as probabilities (the chunks merged
 *    first); a 128 x 64 tile in shared memory gives the column sums (the vertical scores, each key
 *    in one CTA: written directly) and the 191 diagonal sums of the tile (slash partials).
 * 3. slash_kernel: each diagonal offset sums its (at most 3) tiles' partials in a fixed order.
 * 4. decide_kernel: a^ (vertical summed per visible key block / n) against a- (softmax of the
 *    mean sampled query with the block-mean keys); mode[h] = sqrt(JS) < delta (query-aware).
 * 5. qa_kernel: for query-aware heads, each query block's mean query against the block-mean keys
 *    (fp32), stored as the selection rule's partials (one composite row and key per block); then
 *    the shared cumulative rule (select_mass.cu) with gamma, sink, diagonal and the budget floor.
 * 6. top_kernel: for vertical-slash heads, the fewest largest columns (and diagonals) whose mass
 *    reaches gamma of the total: a radix select on the float bits with the mass per bin in 2^-40
 *    fixed point (deterministic), then ties broken by index as the CPU's sort does; columns are
 *    rounded to each key block's first chosen column, diagonals to a prefix count.
 * 7. vs_rows_kernel: for vertical-slash heads, each row keeps sink + diagonal, the blocks holding
 *    a chosen column visible to the block or crossed by a chosen diagonal, then the most recent
 *    blocks up to the budget floor.
 *
 * Sums differ from the CPU's only in fp32 rounding (the vertical column sums add the rows in the
 * CPU's order; diagonals and GEMM products do not), which can move a near-tie at the gamma boundary.
 * Limits: at most 128 sampled queries, 8192 key blocks visible to the last query, 16-byte aligned
 * q and k rows. Scratch at 128K tokens, 32 / 8 heads, d 128: about 270 MB (mostly the query-aware
 * partials, one float2 per visible tile of every head).
 * Measured on an H100 (bf16, causal, 32 / 8 heads, d 128, mixed input): 0.44 ms at 8K, 1.4 ms at
 * 32K (the CPU selector: 233-310 ms), 6.2 ms at 128K.
 */
#include "estimate_common.cuh"

namespace {

using namespace us_est;

constexpr int kNS = 128;          /* sampled query rows per CTA (8 warps x 16) */
constexpr int kSThreads = 256;
constexpr int kSKeys = 64;        /* keys per tile */
constexpr int kSChunk = 2048;     /* keys per sample CTA */
constexpr int kDiag = kNS + kSKeys - 1; /* diagonals crossing a 128 x 64 tile */
constexpr int kZld = kSKeys + 1;
constexpr int kMaxDecide = 8192;  /* key blocks visible to the last sampled query */
constexpr int kTopThreads = 1024;
constexpr int kRowThreads = 128;

struct FlexParams {
    const void *q, *k;
    int64_t q_hs, q_ts, k_hs, k_ts;
    int hq, hkv, group, d, S;
    int nq, nk, nkb, nqb;
    int n;       /* sampled queries: nq - n .. nq - 1 */
    int ncols;   /* keys visible to the last sampled query */
    int64_t p0;  /* position of the first sampled query */
    int n_chunks;
    float qmul;  /* scale * log2 e */
    float gamma, delta;
    int sink, min_blocks;
    int64_t q_offset;
    const int32_t *limit;
    const int64_t *row_offset;
    const int32_t *visible;
    int32_t *counts, *indices;
    /* scratch */
    float *kb;         /* [hkv, nkb, d] */
    float2 *samp;      /* [hq, kNS, n_chunks]: (max, sum) of each sampled row per chunk */
    float *vertical;   /* [hq, nk] (only [0, ncols) written) */
    float *diagpart;   /* [hq, n_ktiles, kDiag] */
    float *slash;      /* [hq, 2 nk - 1] (only the reachable offsets written) */
    int32_t *mode;     /* [hq]: 1 query-aware, 0 vertical-slash */
    int32_t *first_col;   /* [hq, nkb] */
    int32_t *diag_prefix; /* [hq, 2 nk] */
    float2 *qa_part;   /* [n_indices] */
    float2 *qa_row;    /* [hq, nqb] */
};

__device__ __forceinline__ int64_t slash_lo(const FlexParams &p) { return p.p0 - p.ncols + p.nk; }
__device__ __forceinline__ int64_t slash_hi(const FlexParams &p) { return p.p0 + p.n - 1 + p.nk - 1; }

/* ---- 1. block-mean keys ------------------------------------------------------------------------ */

template <typename T> __global__ void kmean_kernel(const FlexParams p)
{
    const int64_t x = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= (int64_t)p.hkv * p.nkb * p.d) return;
    const int c = (int)(x % p.d), j = (int)((x / p.d) % p.nkb), h = (int)(x / ((int64_t)p.d * p.nkb));
    const int t0 = j * p.S, t1 = min(t0 + p.S, p.nk);
    const T *k = (const T *)p.k + (int64_t)h * p.k_hs + c;
    float acc = 0.0f;
    for (int t = t0; t < t1; t++) acc += Conv<T>::to_f(k[(int64_t)t * p.k_ts]);
    p.kb[x] = acc * (1.0f / (float)(t1 - t0));
}

/* ---- 2. the sampled queries' attention ---------------------------------------------------------- */

template <int D> __device__ __forceinline__ uint32_t swzd(int r, int c) { return swz<D>(r, c); }

template <typename T, int D, int PASS> __global__ void __launch_bounds__(kSThreads) sample_kernel(const FlexParams p)
{
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ float s_m[kNS], s_inv[kNS];
    __shared__ float s_red[4][kSKeys];
    constexpr int CH = D / 8;
    const int h = blockIdx.x, chunk = blockIdx.y;
    const int c0 = chunk * kSChunk, c1 = min(c0 + kSChunk, p.ncols);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, q4 = lane % 4;
    const uint32_t q_sm = smem_u32(smem), k_sm = q_sm + kNS * D * 2;
    float *zs = reinterpret_cast<float *>(smem + kNS * D * 2 + 2 * kSKeys * D * 2); /* PASS 1: [kNS][kZld] */
    const int i0 = p.nq - p.n;

    /* rows: sampled query r = warp * 16 + g (+ 8) sees keys [0, nv) */
    const int rA = warp * 16 + g, rB = rA + 8;
    const int nvA = rA < p.n ? p.limit[i0 + rA] + 1 : 0, nvB = rB < p.n ? p.limit[i0 + rB] + 1 : 0;

    const T *qg = (const T *)p.q + (int64_t)h * p.q_hs;
    const T *kg = (const T *)p.k + (int64_t)(h / p.group) * p.k_hs;
    for (int x = tid; x < kNS * CH; x += kSThreads) {
        const int r = x / CH, c = x % CH;
        const bool ok = r < p.n;
        cp_async16(q_sm + swzd<D>(r, c), qg + (ok ? (int64_t)(i0 + r) * p.q_ts + c * 8 : 0), ok ? 16 : 0);
    }
    auto load_keys = [&](int t0, int stage) {
        for (int x = tid; x < kSKeys * CH; x += kSThreads) {
            const int r = x / CH, c = x % CH;
            const bool ok = t0 + r < c1;
            cp_async16(k_sm + stage * kSKeys * D * 2 + swzd<D>(r, c), kg + (ok ? (int64_t)(t0 + r) * p.k_ts + c * 8 : 0),
                       ok ? 16 : 0);
        }
        cp_async_commit();
    };
    load_keys(c0, 0); /* the q tile joins the first group */
    if (PASS == 1) {
        /* merge each row's chunk totals (fixed order) into its max and 1 / sum */
        if (tid < kNS) {
            float2 acc = make_float2(-INFINITY, 0.0f);
            const float2 *sp = p.samp + ((int64_t)h * kNS + tid) * p.n_chunks;
            for (int k = 0; k < p.n_chunks; k++) acc = ms_merge(acc, sp[k]);
            s_m[tid] = acc.x;
            s_inv[tid] = acc.y > 0.0f ? 1.0f / acc.y : 0.0f;
        }
    }
    float mA = -INFINITY, sA = 0.0f, mB = -INFINITY, sB = 0.0f; /* PASS 0 */
    const int n_tiles = (c1 - c0 + kSKeys - 1) / kSKeys;
    for (int j = 0; j < n_tiles; j++) {
        const int t0 = c0 + j * kSKeys;
        if (j + 1 < n_tiles) {
            load_keys(t0 + kSKeys, (j + 1) & 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const uint32_t ks = k_sm + (j & 1) * kSKeys * D * 2;
        float acc[8][4];
#pragma unroll
        for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
        if (__any_sync(0xffffffffu, t0 < nvA || t0 < nvB)) {
#pragma unroll 4
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t a[4], b[4][4];
                ldsm_x4(a, q_sm + swzd<D>(warp * 16 + (lane % 16), 2 * kk + lane / 16));
#pragma unroll
                for (int np = 0; np < 4; np++)
                    ldsm_x4(b[np], ks + swzd<D>(np * 16 + (lane % 8) + (lane / 16) * 8, 2 * kk + (lane / 8) % 2));
#pragma unroll
                for (int np = 0; np < 4; np++) {
                    mma16816<T>(acc[2 * np], a, b[np][0], b[np][1]);
                    mma16816<T>(acc[2 * np + 1], a, b[np][2], b[np][3]);
                }
            }
        }
        /* log2-scaled scores; keys past a row's visible prefix are -inf */
#pragma unroll
        for (int n = 0; n < 8; n++) {
            const int t = t0 + n * 8 + 2 * q4;
            acc[n][0] = t < nvA ? acc[n][0] * p.qmul : -INFINITY;
            acc[n][1] = t + 1 < nvA ? acc[n][1] * p.qmul : -INFINITY;
            acc[n][2] = t < nvB ? acc[n][2] * p.qmul : -INFINITY;
            acc[n][3] = t + 1 < nvB ? acc[n][3] * p.qmul : -INFINITY;
        }
        if (PASS == 0) {
            float xA = -INFINITY, xB = -INFINITY;
#pragma unroll
            for (int n = 0; n < 8; n++)
                xA = fmaxf(xA, fmaxf(acc[n][0], acc[n][1])), xB = fmaxf(xB, fmaxf(acc[n][2], acc[n][3]));
#pragma unroll
            for (int o = 1; o < 4; o <<= 1) {
                xA = fmaxf(xA, __shfl_xor_sync(0xffffffffu, xA, o));
                xB = fmaxf(xB, __shfl_xor_sync(0xffffffffu, xB, o));
            }
            const float nA = fmaxf(mA, xA), nB = fmaxf(mB, xB);
            if (nA != -INFINITY) {
                float u = 0.0f;
#pragma unroll
                for (int n = 0; n < 8; n++) u += ex2(acc[n][0] - nA) + ex2(acc[n][1] - nA);
                sA = sA * ex2(mA - nA) + u, mA = nA;
            }
            if (nB != -INFINITY) {
                float u = 0.0f;
#pragma unroll
                for (int n = 0; n < 8; n++) u += ex2(acc[n][2] - nB) + ex2(acc[n][3] - nB);
                sB = sB * ex2(mB - nB) + u, mB = nB;
            }
        } else {
            /* probabilities into the tile, then column and diagonal sums */
            const float mrA = s_m[rA], irA = s_inv[rA], mrB = s_m[rB], irB = s_inv[rB];
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const int col = n * 8 + 2 * q4;
                zs[rA * kZld + col] = acc[n][0] == -INFINITY ? 0.0f : ex2(acc[n][0] - mrA) * irA;
                zs[rA * kZld + col + 1] = acc[n][1] == -INFINITY ? 0.0f : ex2(acc[n][1] - mrA) * irA;
                zs[rB * kZld + col] = acc[n][2] == -INFINITY ? 0.0f : ex2(acc[n][2] - mrB) * irB;
                zs[rB * kZld + col + 1] = acc[n][3] == -INFINITY ? 0.0f : ex2(acc[n][3] - mrB) * irB;
            }
            __syncthreads();
            {
                /* column c: 4 threads of 32 rows each, in row order, then their 4 sums in order */
                const int c = tid % kSKeys, part = tid / kSKeys;
                float s = 0.0f;
                for (int r = part * 32; r < part * 32 + 32; r++) s += zs[r * kZld + c];
                s_red[part][c] = s;
            }
            if (tid < kDiag) {
                /* diagonal delta = r - c + 63: rows r = delta - 63 + c for the tile's columns c */
                const int dlt = tid;
                float s = 0.0f;
                for (int c = max(0, kSKeys - 1 - dlt); c < kSKeys && dlt - (kSKeys - 1) + c < kNS; c++)
                    s += zs[(dlt - (kSKeys - 1) + c) * kZld + c];
                p.diagpart[((int64_t)h * ((p.ncols + kSKeys - 1) / kSKeys) + t0 / kSKeys) * kDiag + dlt] = s;
            }
            __syncthreads();
            if (tid < kSKeys && t0 + tid < c1)
                p.vertical[(int64_t)h * p.nk + t0 + tid] = (s_red[0][tid] + s_red[1][tid]) + (s_red[2][tid] + s_red[3][tid]);
        }
        __syncthreads(); /* the next prefetch overwrites this stage; zs is rewritten next tile */
    }
    if (PASS == 0) {
#pragma unroll
        for (int o = 1; o < 4; o <<= 1) {
            sA += __shfl_xor_sync(0xffffffffu, sA, o);
            sB += __shfl_xor_sync(0xffffffffu, sB, o);
        }
        if (q4 == 0) {
            p.samp[((int64_t)h * kNS + rA) * p.n_chunks + chunk] = make_float2(mA, sA);
            p.samp[((int64_t)h * kNS + rB) * p.n_chunks + chunk] = make_float2(mB, sB);
        }
    }
}

/* ---- 3. slash sums ---------------------------------------------------------------------------- */

__global__ void slash_kernel(const FlexParams p)
{
    const int h = blockIdx.y;
    const int64_t x = slash_lo(p) + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x > slash_hi(p)) return;
    const int64_t o = x - (p.nk - 1); /* offset pos - key */
    const int64_t c_lo = max((int64_t)0, p.p0 - o), c_hi = min((int64_t)p.ncols - 1, p.p0 + kNS - 1 - o);
    const int n_ktiles = (p.ncols + kSKeys - 1) / kSKeys;
    float s = 0.0f;
    for (int64_t kt = c_lo / kSKeys; kt <= c_hi / kSKeys && c_lo <= c_hi; kt++) {
        const int64_t dlt = o - p.p0 + kt * kSKeys + (kSKeys - 1);
        if (dlt >= 0 && dlt < kDiag) s += p.diagpart[((int64_t)h * n_ktiles + kt) * kDiag + dlt];
    }
    p.slash[(int64_t)h * (2 * (int64_t)p.nk - 1) + x] = s;
}

/* ---- 4. the per-head pattern decision ----------------------------------------------------------- */

/* us_exp2f (unisparse/fast_exp2.h) operation for operation. */
__device__ __forceinline__ float cpu_exp2f(float x)
{
    x = x < -126.0f ? -126.0f : x;
    const float fl = floorf(x), f = x - fl;
    float q = 1.8775767e-3f;
    q = fmaf(q, f, 8.9893397e-3f);
    q = fmaf(q, f, 5.5826318e-2f);
    q = fmaf(q, f, 2.4015361e-1f);
    q = fmaf(q, f, 6.9315308e-1f);
    q = fmaf(q, f, 9.9999994e-1f);
    return q * __int_as_float(((int)fl + 127) << 23);
}

template <typename T> __global__ void __launch_bounds__(256) decide_kernel(const FlexParams p)
{
    extern __shared__ __align__(16) unsigned char dsm[];
    const int h = blockIdx.x, tid = threadIdx.x, nvb = (p.ncols + p.S - 1) / p.S;
    double *term = reinterpret_cast<double *>(dsm);       /* [nvb] */
    float *a_bar = reinterpret_cast<float *>(term + nvb); /* [nvb] */
    float *a_hat = a_bar + nvb;                           /* [nvb] */
    float *row = a_hat + nvb;                             /* [d] */
    __shared__ float s_sum;
    const int i0 = p.nq - p.n;
    const T *qg = (const T *)p.q + (int64_t)h * p.q_hs;
    for (int c = tid; c < p.d; c += blockDim.x) {
        float s = 0.0f;
        for (int r = 0; r < p.n; r++) s += Conv<T>::to_f(qg[(int64_t)(i0 + r) * p.q_ts + c]) * p.qmul;
        row[c] = s;
    }
    __syncthreads();
    const float *kb = p.kb + (int64_t)(h / p.group) * p.nkb * p.d;
    const float *vert = p.vertical + (int64_t)h * p.nk;
    for (int j = tid; j < nvb; j += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < p.d; c++) acc = fmaf(row[c], kb[(int64_t)j * p.d + c], acc);
        a_bar[j] = acc / (float)p.n;
        double v = 0.0;
        for (int c = j * p.S; c < min((j + 1) * p.S, p.ncols); c++) v += vert[c];
        a_hat[j] = (float)(v / (double)p.n);
    }
    __syncthreads();
    if (tid == 0) { /* the CPU's order: max, then the sum of 2^(x - max) */
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < nvb; j++) mx = a_bar[j] > mx ? a_bar[j] : mx;
        for (int j = 0; j < nvb; j++) sum += a_bar[j] = cpu_exp2f(a_bar[j] - mx);
        s_sum = sum;
    }
    __syncthreads();
    for (int j = tid; j < nvb; j += blockDim.x) {
        const float x = a_bar[j] / s_sum, y = a_hat[j];
        const double m = 0.5 * ((double)x + (double)y);
        double t = 0.0;
        if (x > 0) t += 0.5 * x * log(x / m);
        if (y > 0) t += 0.5 * y * log(y / m);
        term[j] = t;
    }
    __syncthreads();
    if (tid == 0) {
        double js = 0.0;
        for (int j = 0; j < nvb; j++) js += term[j];
        p.mode[h] = sqrt(js > 0 ? js : 0) < (double)p.delta ? 1 : 0;
    }
}

/* ---- 5. query-aware heads: pooled block scores ------------------------------------------------- */

template <typename T> __global__ void __launch_bounds__(kRowThreads) qa_kernel(const FlexParams p)
{
    extern __shared__ __align__(16) unsigned char qsm[];
    float *qc = reinterpret_cast<float *>(qsm); /* [d] */
    float *z = qc + p.d;                        /* [nkb] */
    __shared__ float s_red[kRowThreads / 32];
    __shared__ float s_max;
    const int64_t r = blockIdx.x;
    const int h = (int)(r / p.nqb), i = (int)(r % p.nqb);
    if (p.mode[h] != 1) return;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int t0 = i * p.S, t1 = min(t0 + p.S, p.nq);
    const T *qg = (const T *)p.q + (int64_t)h * p.q_hs;
    for (int c = tid; c < p.d; c += blockDim.x) {
        float s = 0.0f;
        for (int t = t0; t < t1; t++) s += Conv<T>::to_f(qg[(int64_t)t * p.q_ts + c]);
        qc[c] = s * (p.qmul / (float)(t1 - t0));
    }
    __syncthreads();
    /* composite keys visible to the block's last query (cq = ck = S) */
    const int nv = min(p.nkb, p.limit[t1 - 1] / p.S + 1);
    const float *kb = p.kb + (int64_t)(h / p.group) * p.nkb * p.d;
    for (int b = warp; b < nv; b += kRowThreads / 32) {
        float acc = 0.0f;
        for (int c = lane; c < p.d; c += 32) acc = fmaf(qc[c], kb[(int64_t)b * p.d + c], acc);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) z[b] = acc;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int b = tid; b < nv; b += blockDim.x) mx = fmaxf(mx, z[b]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) s_red[warp] = mx;
    __syncthreads();
    if (tid == 0) {
        float m = s_red[0];
        for (int w = 1; w < kRowThreads / 32; w++) m = fmaxf(m, s_red[w]);
        s_max = m;
    }
    __syncthreads();
    const float m = s_max;
    float sum = 0.0f;
    float2 *part = p.qa_part + p.row_offset[r];
    for (int b = tid; b < nv; b += blockDim.x) {
        sum += ex2(z[b] - m);
        part[b] = make_float2(z[b], 1.0f); /* one composite key per block: (max, sum) = (z, 1) */
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    __syncthreads();
    if (lane == 0) s_red[warp] = sum;
    __syncthreads();
    if (tid == 0) {
        float s = 0.0f;
        for (int w = 0; w < kRowThreads / 32; w++) s += s_red[w];
        p.qa_row[r] = make_float2(m, s);
    }
}

/* ---- 6. vertical-slash heads: the heaviest columns and diagonals -------------------------------- */

__device__ __forceinline__ unsigned long long fixed40(float x)
{
    return (unsigned long long)__double2ull_rn((double)x * 1099511627776.0); /* x * 2^40, x >= 0 */
}

/* Marks the fewest largest positive entries of v[0, n) (zero outside [lo, hi]) whose sum reaches
 * gamma of the total (all positive ones when gamma >= 1), ties by ascending index; which = 0
 * writes each key block's first chosen column, which = 1 the prefix count of chosen entries. */
__global__ void __launch_bounds__(kTopThreads) top_kernel(const FlexParams p)
{
    __shared__ unsigned long long hist[256];
    __shared__ unsigned long long s_tot[32];
    __shared__ int s_ish[32];
    __shared__ unsigned s_prefix;
    __shared__ unsigned long long s_above;
    __shared__ int s_take;
    const int h = blockIdx.x, which = blockIdx.y, tid = threadIdx.x;
    if (p.mode[h] != 0) return;
    const int64_t n = which == 0 ? p.nk : 2 * (int64_t)p.nk - 1;
    const int64_t lo = which == 0 ? 0 : slash_lo(p), hi = which == 0 ? p.ncols - 1 : slash_hi(p);
    const float *v = which == 0 ? p.vertical + (int64_t)h * p.nk : p.slash + (int64_t)h * n;
    auto val = [&](int64_t x) { return x >= lo && x <= hi ? v[x] : 0.0f; };
    int32_t *first_col = p.first_col + (int64_t)h * p.nkb;
    if (which == 0)
        for (int j = tid; j < p.nkb; j += kTopThreads) first_col[j] = INT32_MAX;

    /* the total in fixed point */
    unsigned long long local = 0;
    for (int64_t x = lo + tid; x <= hi; x += kTopThreads) {
        const float f = v[x];
        if (f > 0.0f) local += fixed40(f);
    }
    unsigned long long total;
    (void)block_excl_scan<unsigned long long>(local, s_tot, &total);
    const bool all = p.gamma >= 1.0f;
    const double tgt = (double)p.gamma * (double)total;
    /* radix select of the boundary entry: 4 passes of 8 bits over the float bits */
    if (tid == 0) s_prefix = 0u, s_above = 0ull;
    __syncthreads();
    if (!all && total > 0)
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int b = tid; b < 256; b += kTopThreads) hist[b] = 0ull;
            __syncthreads();
            const unsigned mask = shift == 24 ? 0u : 0xffffffffu << (shift + 8), prefix = s_prefix;
            for (int64_t x = lo + tid; x <= hi; x += kTopThreads) {
                const float f = v[x];
                const unsigned key = __float_as_uint(f);
                if (f > 0.0f && (key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], fixed40(f));
            }
            __syncthreads();
            if (tid == 0) {
                unsigned long long run = s_above;
                int sel = 0;
                for (int b = 255; b >= 0; b--) {
                    if ((double)(run + hist[b]) >= tgt) {
                        sel = b;
                        break;
                    }
                    run += hist[b];
                }
                s_above = run;
                s_prefix = prefix | ((unsigned)sel << shift);
            }
            __syncthreads();
        }
    /* entries above the boundary key are chosen; of those equal to it, the first `take` by index */
    const unsigned kstar = s_prefix;
    if (tid == 0) {
        int take = 0;
        if (!all && total > 0) {
            const unsigned long long w = fixed40(__uint_as_float(kstar));
            const double need = tgt - (double)s_above;
            const double t = w > 0 ? ceil(need / (double)w) : 4e9;
            take = t > 2e9 ? INT32_MAX : t < 1.0 ? 1 : (int)t;
        }
        s_take = take;
    }
    __syncthreads();
    const int take = s_take;
    auto chosen_above = [&](float f) {
        return f > 0.0f && (all || (total > 0 && __float_as_uint(f) > kstar));
    };
    /* contiguous index ranges per thread for the rank of equal keys and the prefix count */
    const int64_t per = (n + kTopThreads - 1) / kTopThreads;
    const int64_t x0 = min(n, tid * per), x1 = min(n, x0 + per);
    int eq = 0;
    if (!all && total > 0)
        for (int64_t x = x0; x < x1; x++) eq += val(x) > 0.0f && __float_as_uint(val(x)) == kstar;
    int eq_total;
    int eq_before = block_excl_scan<int>(eq, s_ish, &eq_total);
    int cnt = 0;
    for (int64_t x = x0; x < x1; x++) {
        const float f = val(x);
        bool c = chosen_above(f);
        if (!c && !all && total > 0 && f > 0.0f && __float_as_uint(f) == kstar) c = eq_before++ < take;
        if (c) {
            cnt++;
            if (which == 0) atomicMin(&first_col[x / p.S], (int32_t)x);
        }
    }
    if (which == 0) return;
    int cnt_total;
    int before = block_excl_scan<int>(cnt, s_ish, &cnt_total);
    /* second walk over the same range: the prefix count (diag_prefix[x + 1] = [x] + chosen[x]) */
    eq_before = block_excl_scan<int>(eq, s_ish, &eq_total);
    int32_t *dp = p.diag_prefix + (int64_t)h * (n + 1);
    for (int64_t x = x0; x < x1; x++) {
        dp[x] = before;
        const float f = val(x);
        bool c = chosen_above(f);
        if (!c && !all && total > 0 && f > 0.0f && __float_as_uint(f) == kstar) c = eq_before++ < take;
        before += c;
    }
    if (tid == 0) dp[n] = cnt_total;
}

/* ---- 7. vertical-slash rows --------------------------------------------------------------------- */

__global__ void __launch_bounds__(kRowThreads) vs_rows_kernel(const FlexParams p)
{
    extern __shared__ __align__(16) unsigned char rsm[];
    int *flag = reinterpret_cast<int *>(rsm); /* [vis] */
    __shared__ int s_ish[32];
    const int64_t r = blockIdx.x;
    const int h = (int)(r / p.nqb), i = (int)(r % p.nqb), tid = threadIdx.x;
    if (p.mode[h] != 0) return;
    const int vis = p.visible[i];
    const int64_t pos0 = p.q_offset + (int64_t)i * p.S;
    const int q1 = min((i + 1) * p.S, p.nq) - 1;
    const int64_t pos1 = p.q_offset + q1;
    const int d_last = (int)min(pos1 / p.S, (int64_t)vis - 1), d_first = (int)min(pos0 / p.S, (int64_t)d_last);
    const int n_sink = min(p.sink, vis);
    const int lim = p.limit[q1];
    const int32_t *fc = p.first_col + (int64_t)h * p.nkb;
    const int32_t *dp = p.diag_prefix + (int64_t)h * 2 * p.nk;
    int kept = 0;
    for (int j = tid; j < vis; j += kRowThreads) {
        bool k = j < n_sink || (j >= d_first && j <= d_last) || fc[j] <= lim;
        if (!k) {
            const int64_t k0 = (int64_t)j * p.S, k1 = min(k0 + p.S, (int64_t)p.nk) - 1;
            const int64_t lo = pos0 - k1 + p.nk - 1, hi = pos1 - k0 + p.nk - 1;
            k = dp[hi + 1] > dp[lo];
        }
        flag[j] = k;
        kept += k;
    }
    int total;
    (void)block_excl_scan<int>(kept, s_ish, &total);
    if (tid == 0) /* the budget floor: the most recent blocks not yet kept */
        for (int j = vis - 1; j >= 0 && total < p.min_blocks; j--)
            if (!flag[j]) flag[j] = 1, total++;
    __syncthreads();
    const int items = (vis + kRowThreads - 1) / kRowThreads;
    const int b0 = min(tid * items, vis), b1 = min(b0 + items, vis);
    int local = 0;
    for (int b = b0; b < b1; b++) local += flag[b];
    int pos = block_excl_scan<int>(local, s_ish, &total);
    int32_t *out = p.indices + p.row_offset[r];
    for (int b = b0; b < b1; b++)
        if (flag[b]) out[pos++] = b;
    if (tid == 0) p.counts[r] = total;
}

template <typename T, int D> us_status launch_sample(const FlexParams &fp, cudaStream_t stream, us_error *err)
{
    const int smem0 = kNS * D * 2 + 2 * kSKeys * D * 2, smem1 = smem0 + kNS * kZld * (int)sizeof(float);
    dim3 grid((unsigned)fp.hq, (unsigned)fp.n_chunks);
    US_CUDA_TRY(err, cudaFuncSetAttribute(sample_kernel<T, D, 0>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem0));
    US_CUDA_TRY(err, cudaFuncSetAttribute(sample_kernel<T, D, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem1));
    sample_kernel<T, D, 0><<<grid, kSThreads, smem0, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    sample_kernel<T, D, 1><<<grid, kSThreads, smem1, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

template <typename T> us_status launch_all(const FlexParams &fp, const SelectParams &sel, int P, int nvb,
                                           cudaStream_t stream, us_error *err)
{
    const int64_t kth = (int64_t)fp.hkv * fp.nkb * fp.d;
    kmean_kernel<T><<<(unsigned)((kth + 255) / 256), 256, 0, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    us_status s = fp.d == 64    ? launch_sample<T, 64>(fp, stream, err)
                  : fp.d == 128 ? launch_sample<T, 128>(fp, stream, err)
                                : launch_sample<T, 256>(fp, stream, err);
    if (s) return s;
    const int64_t n_off = (fp.p0 + fp.n - 1) - (fp.p0 - fp.ncols + 1) + 1;
    slash_kernel<<<dim3((unsigned)((n_off + 255) / 256), (unsigned)fp.hq), 256, 0, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    const int dsm = nvb * (int)(sizeof(double) + 2 * sizeof(float)) + fp.d * (int)sizeof(float);
    US_CUDA_TRY(err, cudaFuncSetAttribute(decide_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, dsm));
    decide_kernel<T><<<(unsigned)fp.hq, 256, dsm, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    const int64_t rows = (int64_t)fp.hq * fp.nqb;
    const int qsm = (fp.d + fp.nkb) * (int)sizeof(float);
    US_CUDA_TRY(err, cudaFuncSetAttribute(qa_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, qsm));
    qa_kernel<T><<<(unsigned)rows, kRowThreads, qsm, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    if ((s = launch_select_by_mass(sel, rows, P, stream, err))) return s;
    top_kernel<<<dim3((unsigned)fp.hq, 2), kTopThreads, 0, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    const int rsm = P * (int)sizeof(int);
    US_CUDA_TRY(err, cudaFuncSetAttribute(vs_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, rsm));
    vs_rows_kernel<<<(unsigned)rows, kRowThreads, rsm, stream>>>(fp);
    US_CUDA_TRY(err, cudaGetLastError());
    return US_OK;
}

} // namespace

us_status us_cuda_select_flexprefill(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    const us_unisparse_params &pp = plan->p;
    const int S = plan->block, d = plan->d;
    if (plan->n_heads != plan->hq || plan->heads_per_row != 1)
        return us_error_set(err, US_ERR_INVALID, "FlexPrefill GPU estimation: the plan must have one selection head per query head");
    const int64_t n = pp.flex_last_q < plan->nq ? pp.flex_last_q : plan->nq;
    if (n > kNS)
        return us_error_set(err, US_ERR_UNSUPPORTED, "FlexPrefill GPU estimation samples at most %d queries (flex_last_q %d)",
                            kNS, pp.flex_last_q);
    if (d != 64 && d != 128 && d != 256)
        return us_error_set(err, US_ERR_UNSUPPORTED, "FlexPrefill GPU estimation: head dim %d (64, 128, 256)", d);
    if (!aligned16(&a->q) || !aligned16(&a->k))
        return us_error_set(err, US_ERR_UNSUPPORTED, "FlexPrefill GPU estimation needs 16-byte aligned q and k rows");
    if (plan->nk >= (int64_t)1 << 29 || plan->hq > 65535)
        return us_error_set(err, US_ERR_UNSUPPORTED, "FlexPrefill GPU estimation: too many tokens or heads");
    const int64_t ncols = plan->last_limit + 1;
    const int nvb = (int)((ncols + S - 1) / S);
    if (nvb > kMaxDecide)
        return us_error_set(err, US_ERR_UNSUPPORTED, "FlexPrefill GPU estimation: %d key blocks visible to the last "
                            "query (at most %d)", nvb, kMaxDecide);
    int P;
    us_status s = sort_width(plan, &P, err);
    if (s) return s;
    const int hq = plan->hq, nk = (int)plan->nk, nkb = plan->n_kblocks, nqb = plan->n_qblocks;
    const int n_chunks = (int)((ncols + kSChunk - 1) / kSChunk), n_ktiles = (int)((ncols + kSKeys - 1) / kSKeys);
    /* scratch, in order */
    size_t off = 0;
    auto take = [&](size_t bytes) {
        size_t at = off;
        off += align256(bytes);
        return at;
    };
    const size_t o_kb = take((size_t)plan->hkv * nkb * d * sizeof(float));
    const size_t o_samp = take((size_t)hq * kNS * n_chunks * sizeof(float2));
    const size_t o_vert = take((size_t)hq * nk * sizeof(float));
    const size_t o_dpart = take((size_t)hq * n_ktiles * kDiag * sizeof(float));
    const size_t o_slash = take((size_t)hq * (2 * (size_t)nk - 1) * sizeof(float));
    const size_t o_mode = take((size_t)hq * sizeof(int32_t));
    const size_t o_fc = take((size_t)hq * nkb * sizeof(int32_t));
    const size_t o_dp = take((size_t)hq * 2 * (size_t)nk * sizeof(int32_t));
    const size_t o_qp = take((size_t)plan->n_indices * sizeof(float2));
    const size_t o_qr = take((size_t)hq * nqb * sizeof(float2));
    if ((s = ensure_scratch(plan, off, "FlexPrefill", err))) return s;
    unsigned char *base = (unsigned char *)plan->est_scratch;

    FlexParams fp;
    fp.q = a->q.data, fp.k = a->k.data;
    fp.q_hs = a->q.stride[0], fp.q_ts = a->q.stride[1], fp.k_hs = a->k.stride[0], fp.k_ts = a->k.stride[1];
    fp.hq = hq, fp.hkv = plan->hkv, fp.group = plan->group, fp.d = d, fp.S = S;
    fp.nq = (int)plan->nq, fp.nk = nk, fp.nkb = nkb, fp.nqb = nqb;
    fp.n = (int)n, fp.ncols = (int)ncols, fp.p0 = plan->q_offset + plan->nq - n, fp.n_chunks = n_chunks;
    fp.qmul = plan->scale * 1.4426950408889634f;
    fp.gamma = pp.flex_gamma, fp.delta = pp.flex_delta;
    fp.sink = pp.sink_blocks > 1 ? pp.sink_blocks : 1;
    {
        const int budget = (pp.flex_min_budget + S - 1) / S;
        fp.min_blocks = pp.min_blocks > budget ? pp.min_blocks : budget;
    }
    fp.q_offset = plan->q_offset;
    fp.limit = plan->d_limit, fp.row_offset = plan->d_row_offset, fp.visible = plan->d_visible;
    fp.counts = plan->d_counts, fp.indices = plan->d_indices;
    fp.kb = (float *)(base + o_kb), fp.samp = (float2 *)(base + o_samp), fp.vertical = (float *)(base + o_vert);
    fp.diagpart = (float *)(base + o_dpart), fp.slash = (float *)(base + o_slash), fp.mode = (int32_t *)(base + o_mode);
    fp.first_col = (int32_t *)(base + o_fc), fp.diag_prefix = (int32_t *)(base + o_dp);
    fp.qa_part = (float2 *)(base + o_qp), fp.qa_row = (float2 *)(base + o_qr);

    /* the query-aware heads' rule: one composite row per query block, one composite key per key
     * block (cq = ck = S) */
    SelectParams sel;
    sel.part = fp.qa_part, sel.rowpart = fp.qa_row, sel.n_chunks = 1, sel.chunk = nkb;
    sel.limit = plan->d_limit, sel.row_offset = plan->d_row_offset, sel.visible = plan->d_visible;
    sel.counts = plan->d_counts, sel.indices = plan->d_indices;
    sel.n_qblocks = nqb, sel.nqc = nqb, sel.nkc = nkb, sel.cq = S, sel.ck = S, sel.R = 1, sel.G = 1, sel.S = S;
    sel.nq = plan->nq, sel.q_offset = plan->q_offset;
    sel.tau = pp.flex_gamma;
    sel.sink_blocks = fp.sink, sel.local_blocks = pp.local_blocks;
    sel.min_blocks = fp.min_blocks, sel.max_blocks = pp.max_blocks;
    sel.row_union = 0;
    sel.mode = fp.mode, sel.mode_want = 1;
    return plan->dtype == US_BF16 ? launch_all<__nv_bfloat16>(fp, sel, P, nvb, stream, err)
                                  : launch_all<__half>(fp, sel, P, nvb, stream, err);
}
