/* gemma3_vision.c: binding the vision tower and projector tensors of a Hugging Face Gemma 3 directory,
 * and the image encoder (tower then projector) over them (see gemma3_vision.h). */
#include "gemma3_vision.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

void us_gemma3_vision_free(us_gemma3_vision **pv)
{
    if (!pv || !*pv) return;
    free((*pv)->layers);
    free((*pv)->vectors);
    free(*pv);
    *pv = NULL;
}

typedef struct {
    const us_gemma3_weights *w;
    const char *dir;
    us_gemma3_part part;
    float *next; /* the next free f32 vector in vectors */
} binder;

/* A (rows, cols) matrix (or the 4-d patch kernel, when shape4 is given) as a stored-dtype view. */
static us_status bind_mat(binder *b, const char *name, int64_t rows, int64_t cols, const int64_t *shape4,
                          us_vit_mat *m, us_error *err)
{
    const int64_t shape2[2] = {rows, cols};
    us_status s = us_gemma3_weights_tensor(b->w, b->dir, b->part, name, shape4 ? 4 : 2, shape4 ? shape4 : shape2,
                                           &m->data, &m->dtype, err);
    m->rows = rows;
    m->cols = cols;
    return s;
}

/* An (n) vector copied to f32 (plus one when add_one: Gemma's RMSNorm weight), taken from b->next. */
static us_status bind_vec(binder *b, const char *name, int64_t n, int add_one, const float **out, us_error *err)
{
    us_vit_mat m = {NULL, US_F32, 1, n};
    us_status s = us_gemma3_weights_tensor(b->w, b->dir, b->part, name, 1, &n, &m.data, &m.dtype, err);
    if (s) return s;
    float *v = b->next;
    b->next += n;
    us_vit_mat_block(&m, 0, 1, 0, n, v);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return us_error_set(err, US_ERR_FORMAT, "%s: vision tensor \"%s\" holds a non-finite value at %lld", b->dir,
                                name, (long long)i);
        if (add_one) v[i] += 1.0f;
    }
    *out = v;
    return US_OK;
}

us_status us_gemma3_vision_load(us_gemma3_weights *w, const char *dir, const us_siglip_config *vc, us_error *err)
{
    const us_gemma3_config *tc = &w->cfg;
    const int64_t C = vc->hidden_size, I = vc->intermediate_size, L = vc->num_layers, p = vc->patch_size;
    const int64_t P = us_siglip_num_patches(vc), side = us_siglip_patches_per_side(vc);
    int tps = (int)lround(sqrt((double)tc->mm_tokens_per_image));
    if ((int64_t)tps * tps != tc->mm_tokens_per_image || side % tps)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "%s/config.json: field \"mm_tokens_per_image\" = %d must be a square whose root "
                            "divides the %lld patches per side (image_size %d / patch_size %d)",
                            dir, tc->mm_tokens_per_image, (long long)side, vc->image_size, vc->patch_size);

    us_gemma3_vision *v = calloc(1, sizeof *v);
    if (!v) return us_error_set(err, US_ERR_NOMEM, "no memory for the vision weights");
    w->vision = v; /* freed with w on failure */
    v->layers = calloc((size_t)L, sizeof *v->layers);
    v->vectors = malloc((size_t)(4 * C + L * (9 * C + I)) * sizeof *v->vectors);
    if (!v->layers || !v->vectors)
        return us_error_set(err, US_ERR_NOMEM, "no memory for %lld vision layers", (long long)L);
    us_siglip_weights *t = &v->tower;
    t->cfg = *vc;
    t->layers = v->layers;

    binder b = {w, dir, US_GEMMA3_PART_VISION, v->vectors};
    const int64_t kernel[4] = {C, vc->num_channels, p, p};
    us_status s;
    if ((s = bind_mat(&b, "embeddings.patch_embedding.weight", C, vc->num_channels * p * p, kernel, &t->patch, err)) ||
        (s = bind_vec(&b, "embeddings.patch_embedding.bias", C, 0, &t->patch_b, err)) ||
        (s = bind_mat(&b, "embeddings.position_embedding.weight", P, C, NULL, &t->pos, err)) ||
        (s = bind_vec(&b, "post_layernorm.weight", C, 0, &t->post_ln_w, err)) ||
        (s = bind_vec(&b, "post_layernorm.bias", C, 0, &t->post_ln_b, err)))
        return s;
    for (int l = 0; l < L; l++) {
        us_siglip_layer *y = &v->layers[l];
        char n[160];
#define NAME(s_) (snprintf(n, sizeof n, "encoder.layers.%d.%s", l, s_), n)
        if ((s = bind_vec(&b, NAME("layer_norm1.weight"), C, 0, &y->ln1_w, err)) ||
            (s = bind_vec(&b, NAME("layer_norm1.bias"), C, 0, &y->ln1_b, err)) ||
            (s = bind_vec(&b, NAME("layer_norm2.weight"), C, 0, &y->ln2_w, err)) ||
            (s = bind_vec(&b, NAME("layer_norm2.bias"), C, 0, &y->ln2_b, err)) ||
            (s = bind_mat(&b, NAME("self_attn.q_proj.weight"), C, C, NULL, &y->q, err)) ||
            (s = bind_vec(&b, NAME("self_attn.q_proj.bias"), C, 0, &y->q_b, err)) ||
            (s = bind_mat(&b, NAME("self_attn.k_proj.weight"), C, C, NULL, &y->k, err)) ||
            (s = bind_vec(&b, NAME("self_attn.k_proj.bias"), C, 0, &y->k_b, err)) ||
            (s = bind_mat(&b, NAME("self_attn.v_proj.weight"), C, C, NULL, &y->v, err)) ||
            (s = bind_vec(&b, NAME("self_attn.v_proj.bias"), C, 0, &y->v_b, err)) ||
            (s = bind_mat(&b, NAME("self_attn.out_proj.weight"), C, C, NULL, &y->o, err)) ||
            (s = bind_vec(&b, NAME("self_attn.out_proj.bias"), C, 0, &y->o_b, err)) ||
            (s = bind_mat(&b, NAME("mlp.fc1.weight"), I, C, NULL, &y->fc1, err)) ||
            (s = bind_vec(&b, NAME("mlp.fc1.bias"), I, 0, &y->fc1_b, err)) ||
            (s = bind_mat(&b, NAME("mlp.fc2.weight"), C, I, NULL, &y->fc2, err)) ||
            (s = bind_vec(&b, NAME("mlp.fc2.bias"), C, 0, &y->fc2_b, err)))
            return s;
#undef NAME
    }

    us_mm_projector *pr = &v->projector;
    pr->patches_per_side = (int)side;
    pr->tokens_per_side = tps;
    pr->eps = vc->layer_norm_eps; /* Gemma3MultiModalProjector uses the vision config's eps */
    b.part = US_GEMMA3_PART_PROJECTOR;
    if ((s = bind_vec(&b, "mm_soft_emb_norm.weight", C, 1, &pr->norm, err)) ||
        (s = bind_mat(&b, "mm_input_projection_weight", C, tc->hidden_size, NULL, &pr->proj, err)))
        return s;
    return us_mm_projector_check(pr, err);
}

struct us_gemma3_image_encoder {
    const us_gemma3_vision *v;
    int nt;
    us_siglip *tower;
    float *patches; /* (P, Cv) */
    float *scratch; /* us_mm_projector_scratch */
};

void us_gemma3_image_encoder_free(us_gemma3_image_encoder **pe)
{
    if (!pe || !*pe) return;
    us_gemma3_image_encoder *e = *pe;
    us_siglip_free(&e->tower);
    free(e->patches);
    free(e->scratch);
    free(e);
    *pe = NULL;
}

us_status us_gemma3_image_encoder_create(const us_gemma3_weights *w, int threads, us_gemma3_image_encoder **out,
                                         us_error *err)
{
    *out = NULL;
    if (!w) return us_error_set(err, US_ERR_INVALID, "weights are NULL");
    if (!w->vision)
        return us_error_set(err, US_ERR_INVALID, "the checkpoint has no vision tower (no \"vision_config\" in its "
                            "config.json, or a GGUF file): it cannot take images");
    if (threads < 0) return us_error_set(err, US_ERR_INVALID, "threads %d must be >= 0", threads);
    us_gemma3_image_encoder *e = calloc(1, sizeof *e);
    if (!e) return us_error_set(err, US_ERR_NOMEM, "no memory for the image encoder");
    e->v = w->vision;
    e->nt = threads ? threads : omp_get_max_threads();
    us_status s = us_siglip_create(&w->vision->tower, e->nt, &e->tower, err);
    if (s) {
        us_gemma3_image_encoder_free(&e);
        return s;
    }
    const us_siglip_config *vc = &w->vision->tower.cfg;
    e->patches = malloc((size_t)(us_siglip_num_patches(vc) * vc->hidden_size) * sizeof *e->patches);
    e->scratch = malloc((size_t)us_mm_projector_scratch(&w->vision->projector, e->nt) * sizeof *e->scratch);
    if (!e->patches || !e->scratch) {
        us_gemma3_image_encoder_free(&e);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the image encoder's buffers");
    }
    *out = e;
    return US_OK;
}

us_status us_gemma3_encode_image(us_gemma3_image_encoder *e, const float *pixels, float *embeds, us_error *err)
{
    if (!e || !pixels || !embeds) return us_error_set(err, US_ERR_INVALID, "encoder, pixels or embeds is NULL");
    us_status s = us_siglip_forward(e->tower, pixels, e->patches, err); /* (P, Cv) */
    if (s) return s;
    return us_mm_projector_forward(&e->v->projector, e->patches, embeds, e->scratch, e->nt, err); /* (N, C) */
}
