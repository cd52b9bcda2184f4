/* siglip.c: the SigLIP vision tower forward pass (see siglip.h), f32 activations over stored-dtype
 * weights, checked against transformers' SiglipVisionModel by tests/test_gemma3_vlm.c. */
#include "siglip.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct us_siglip {
    const us_siglip_weights *w;
    int nt;
    int64_t P, C, I, K0;         /* patches, hidden, intermediate, channels * p * p */
    float *x, *xn;               /* (P, C): residual stream, normed input / block output */
    float *q, *k, *v, *att;      /* (P, C), heads side by side */
    float *mid;                  /* (P, max(I, K0)): the MLP's hidden layer, first the patches' pixels */
    float *scratch;              /* nt * us_vit_scratch(max(K0, C, I)) */
};

void us_siglip_config_default(us_siglip_config *c)
{
    memset(c, 0, sizeof *c);
    c->image_size = 224;
    c->patch_size = 16;
    c->num_channels = 3;
    c->hidden_size = 768;
    c->intermediate_size = 3072;
    c->num_layers = 12;
    c->num_heads = 12;
    c->layer_norm_eps = 1e-6f;
}

us_status us_siglip_config_validate(const us_siglip_config *c, const char *path, us_error *err)
{
#define POS(f, name)                                                                                         \
    if (c->f < 1)                                                                                            \
    return us_error_set(err, US_ERR_INVALID, "%s: field \"vision_config.%s\" = %d must be positive", path, name, c->f)
    POS(image_size, "image_size");
    POS(patch_size, "patch_size");
    POS(num_channels, "num_channels");
    POS(hidden_size, "hidden_size");
    POS(intermediate_size, "intermediate_size");
    POS(num_layers, "num_hidden_layers");
    POS(num_heads, "num_attention_heads");
#undef POS
    if (c->patch_size > c->image_size)
        return us_error_set(err, US_ERR_INVALID, "%s: field \"vision_config.patch_size\" = %d exceeds image_size = %d",
                            path, c->patch_size, c->image_size);
    if (c->image_size > 8192 || c->num_layers > 1024 || c->hidden_size > 65536 || c->intermediate_size > 1 << 20)
        return us_error_set(err, US_ERR_INVALID, "%s: vision_config sizes out of range (image_size %d, layers %d, "
                            "hidden %d, intermediate %d)", path, c->image_size, c->num_layers, c->hidden_size,
                            c->intermediate_size);
    if (c->hidden_size % c->num_heads)
        return us_error_set(err, US_ERR_INVALID,
                            "%s: field \"vision_config.hidden_size\" = %d is not a multiple of "
                            "num_attention_heads = %d", path, c->hidden_size, c->num_heads);
    if ((c->hidden_size / c->num_heads) % 8)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "%s: vision_config head dim %d (hidden_size / num_attention_heads) must be a multiple of 8",
                            path, c->hidden_size / c->num_heads);
    if (!(c->layer_norm_eps > 0.0f) || !(c->layer_norm_eps < 1.0f))
        return us_error_set(err, US_ERR_INVALID, "%s: field \"vision_config.layer_norm_eps\" must lie in (0, 1)", path);
    return US_OK;
}

void us_siglip_free(us_siglip **ps)
{
    if (!ps || !*ps) return;
    us_siglip *s = *ps;
    free(s->x), free(s->xn), free(s->q), free(s->k), free(s->v), free(s->att), free(s->mid), free(s->scratch);
    free(s);
    *ps = NULL;
}

static float *alloc_f(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

us_status us_siglip_create(const us_siglip_weights *w, int threads, us_siglip **out, us_error *err)
{
    *out = NULL;
    if (!w || !w->layers) return us_error_set(err, US_ERR_INVALID, "vision weights are NULL");
    if (threads < 0) return us_error_set(err, US_ERR_INVALID, "threads %d must be >= 0", threads);
    const us_siglip_config *c = &w->cfg;
    us_status st = us_siglip_config_validate(c, "vision tower", err);
    if (st) return st;
    us_siglip *s = calloc(1, sizeof *s);
    if (!s) return us_error_set(err, US_ERR_NOMEM, "no memory for the vision tower");
    s->w = w;
    s->nt = threads ? threads : omp_get_max_threads();
    s->P = us_siglip_num_patches(c);
    s->C = c->hidden_size;
    s->I = c->intermediate_size;
    s->K0 = (int64_t)c->num_channels * c->patch_size * c->patch_size;
    const int64_t P = s->P, C = s->C, wide = s->I > s->K0 ? s->I : s->K0;
    int64_t maxk = wide > C ? wide : C;
    s->x = alloc_f(P * C), s->xn = alloc_f(P * C);
    s->q = alloc_f(P * C), s->k = alloc_f(P * C), s->v = alloc_f(P * C), s->att = alloc_f(P * C);
    s->mid = alloc_f(P * wide);
    s->scratch = alloc_f(s->nt * us_vit_scratch(maxk));
    if (!s->x || !s->xn || !s->q || !s->k || !s->v || !s->att || !s->mid || !s->scratch) {
        us_siglip_free(&s);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the vision tower's activations (%lld patches of %lld)",
                            (long long)P, (long long)C);
    }
    *out = s;
    return US_OK;
}

/* Bidirectional multi-head attention over the P patches: att (P, C) from q, k, v (P, C). */
static us_status attention(us_siglip *s, us_error *err)
{
    const int64_t H = s->w->cfg.num_heads, dh = s->C / H;
    us_attn_args a = us_attn_args_default();
    /* [H, P, dh] views over (P, C): head h is columns [h dh, (h + 1) dh) */
    a.q = us_tensor_3d(s->q, US_F32, H, s->P, dh);
    a.k = us_tensor_3d(s->k, US_F32, H, s->P, dh);
    a.v = us_tensor_3d(s->v, US_F32, H, s->P, dh);
    a.o = us_tensor_3d(s->att, US_F32, H, s->P, dh);
    a.q.stride[0] = a.k.stride[0] = a.v.stride[0] = a.o.stride[0] = dh;
    a.q.stride[1] = a.k.stride[1] = a.v.stride[1] = a.o.stride[1] = s->C;
    a.mask.kind = US_MASK_BIDIRECTIONAL;
    a.scale = 1.0f / sqrtf((float)dh);
    return us_attention_dense(&a, err);
}

us_status us_siglip_forward(us_siglip *s, const float *pixels, float *out, us_error *err)
{
    if (!s || !pixels || !out) return us_error_set(err, US_ERR_INVALID, "vision tower, pixels or output is NULL");
    const us_siglip_weights *w = s->w;
    const us_siglip_config *c = &w->cfg;
    const int64_t P = s->P, C = s->C, I = s->I, K0 = s->K0, S = c->image_size, p = c->patch_size;
    const int64_t side = us_siglip_patches_per_side(c), npix = (int64_t)c->num_channels * S * S;
    const float eps = c->layer_norm_eps;
    for (int64_t i = 0; i < npix; i++)
        if (!isfinite(pixels[i]))
            return us_error_set(err, US_ERR_INVALID, "pixel %lld (channel %lld, row %lld, column %lld) is not finite",
                                (long long)i, (long long)(i / (S * S)), (long long)(i / S % S), (long long)(i % S));

    /* patch embedding: each patch's pixels (channel, row, column) into a row of mid (P, K0), then the
     * convolution is one product with the kernel (C, K0), plus the bias and the position embedding */
#pragma omp parallel for num_threads(s->nt) schedule(static)
    for (int64_t i = 0; i < P; i++) {
        const int64_t py = i / side, px = i % side;
        float *row = s->mid + i * K0;
        for (int64_t ch = 0; ch < c->num_channels; ch++)
            for (int64_t ky = 0; ky < p; ky++)
                memcpy(row + (ch * p + ky) * p, pixels + (ch * S + py * p + ky) * S + px * p, (size_t)p * sizeof *row);
    }
    us_vit_linear(s->mid, P, K0, &w->patch, w->patch_b, s->x, C, s->scratch, s->nt); /* (P, C) */
    us_vit_mat_block(&w->pos, 0, P, 0, C, s->xn);                                     /* (P, C) */
#pragma omp parallel for num_threads(s->nt) schedule(static)
    for (int64_t i = 0; i < P * C; i++) s->x[i] += s->xn[i];

    for (int64_t l = 0; l < c->num_layers; l++) {
        const us_siglip_layer *y = &w->layers[l];
        /* x += out_proj(MHA(LN1 x)) */
#pragma omp parallel for num_threads(s->nt) schedule(static)
        for (int64_t i = 0; i < P; i++) us_vit_layernorm(s->x + i * C, y->ln1_w, y->ln1_b, C, eps, s->xn + i * C);
        us_vit_linear(s->xn, P, C, &y->q, y->q_b, s->q, C, s->scratch, s->nt); /* (P, C) */
        us_vit_linear(s->xn, P, C, &y->k, y->k_b, s->k, C, s->scratch, s->nt);
        us_vit_linear(s->xn, P, C, &y->v, y->v_b, s->v, C, s->scratch, s->nt);
        us_status st = attention(s, err);
        if (st) return st;
        us_vit_linear(s->att, P, C, &y->o, y->o_b, s->xn, C, s->scratch, s->nt); /* (P, C) */
#pragma omp parallel for num_threads(s->nt) schedule(static)
        for (int64_t i = 0; i < P * C; i++) s->x[i] += s->xn[i];

        /* x += fc2(gelu_tanh(fc1(LN2 x))) */
#pragma omp parallel for num_threads(s->nt) schedule(static)
        for (int64_t i = 0; i < P; i++) us_vit_layernorm(s->x + i * C, y->ln2_w, y->ln2_b, C, eps, s->xn + i * C);
        us_vit_linear(s->xn, P, C, &y->fc1, y->fc1_b, s->mid, I, s->scratch, s->nt); /* (P, I) */
#pragma omp parallel for simd num_threads(s->nt) schedule(static)
        for (int64_t i = 0; i < P * I; i++) s->mid[i] = us_vit_gelu_tanh(s->mid[i]);
        us_vit_linear(s->mid, P, I, &y->fc2, y->fc2_b, s->xn, C, s->scratch, s->nt); /* (P, C) */
#pragma omp parallel for num_threads(s->nt) schedule(static)
        for (int64_t i = 0; i < P * C; i++) s->x[i] += s->xn[i];
    }
#pragma omp parallel for num_threads(s->nt) schedule(static)
    for (int64_t i = 0; i < P; i++) us_vit_layernorm(s->x + i * C, w->post_ln_w, w->post_ln_b, C, eps, out + i * C);
    return US_OK;
}
