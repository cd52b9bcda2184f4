/* mm_projector.c: average pooling, RMSNorm (1 + w) and x W for Gemma 3's projector (see mm_projector.h),
 * as transformers' Gemma3MultiModalProjector computes them in fp32. */
#include "mm_projector.h"

#include <math.h>

us_status us_mm_projector_check(const us_mm_projector *p, us_error *err)
{
    if (!p || !p->norm || !p->proj.data) return us_error_set(err, US_ERR_INVALID, "projector weights are NULL");
    if (p->patches_per_side < 1 || p->tokens_per_side < 1 || p->patches_per_side % p->tokens_per_side)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "projector: %d tokens per side do not divide the %d patches per side (mm_tokens_per_image "
                            "must be a square whose root divides image_size / patch_size)",
                            p->tokens_per_side, p->patches_per_side);
    if (p->proj.rows < 1 || p->proj.cols < 1)
        return us_error_set(err, US_ERR_INVALID, "projector: mm_input_projection_weight is empty");
    if (!(p->eps > 0.0f)) return us_error_set(err, US_ERR_INVALID, "projector: eps must be positive");
    return US_OK;
}

int64_t us_mm_projector_scratch(const us_mm_projector *p, int nthreads)
{
    return us_mm_projector_tokens(p) * p->proj.rows + (int64_t)nthreads * us_vit_scratch(p->proj.rows);
}

us_status us_mm_projector_forward(const us_mm_projector *p, const float *patches, float *out, float *scratch,
                                  int nthreads, us_error *err)
{
    us_status s = us_mm_projector_check(p, err);
    if (s) return s;
    if (!patches || !out || !scratch || nthreads < 1)
        return us_error_set(err, US_ERR_INVALID, "projector: patches, output or scratch is NULL, or threads < 1");
    const int64_t Cv = p->proj.rows, side = p->patches_per_side, ts = p->tokens_per_side, k = side / ts;
    const int64_t N = ts * ts;
    float *pooled = scratch; /* (N, Cv) */
    /* token (ty, tx) = the mean of the k x k patches (ty k + a, tx k + b), then RMSNorm */
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t t = 0; t < N; t++) {
        const int64_t ty = t / ts, tx = t % ts;
        float *o = pooled + t * Cv;
        for (int64_t c = 0; c < Cv; c++) o[c] = 0.0f;
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++) {
                const float *row = patches + ((ty * k + a) * side + tx * k + b) * Cv;
                for (int64_t c = 0; c < Cv; c++) o[c] += row[c];
            }
        for (int64_t c = 0; c < Cv; c++) o[c] /= (float)(k * k);
        us_vit_rmsnorm(o, p->norm, Cv, p->eps, o);
    }
    us_vit_matmul(pooled, N, Cv, &p->proj, out, p->proj.cols, scratch + N * Cv, nthreads); /* (N, Ct) */
    return US_OK;
}
