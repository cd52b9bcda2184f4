/* gemma3_weights.c: a Hugging Face Gemma 3 directory -> memory-mapped, shape-checked weights.
 * Matrices are views into the safetensors mappings (stored dtype); norms become f32 (1 + w). */
#include "gemma3_weights.h"

#include "gemma3_vision.h"
#include "ggml_quant.h"
#include "gguf.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SHARDS 256

void us_gemma3_mat_row(const us_gemma3_mat *m, int64_t r, float *out)
{
    const int64_t n = m->cols;
    if (m->ggml_type) { /* checked at load: a whole number of blocks of a type with a dequantiser */
        (void)us_ggml_dequantize_row(m->ggml_type - 1, (const uint8_t *)m->data + (size_t)r * m->row_bytes, out, n,
                                     NULL);
        return;
    }
    switch (m->dtype) {
    case US_F32: memcpy(out, (const float *)m->data + r * n, (size_t)n * sizeof *out); break;
    case US_BF16: {
        const uint16_t *s = (const uint16_t *)m->data + r * n;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)s[i] << 16;
            memcpy(&out[i], &u, sizeof u);
        }
        break;
    }
    case US_F16: {
        const uint16_t *s = (const uint16_t *)m->data + r * n;
        for (int64_t i = 0; i < n; i++) out[i] = us_f16_to_f32(s[i]);
        break;
    }
    }
}

/* A text tensor's name without its model prefix (vision and projector names are matched by name_matches). */
static const char *canonical(const char *name)
{
    static const char *const prefixes[] = {"model.language_model.", "language_model.model.", "language_model.",
                                           "model."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(name, prefixes[i], n)) return name + n;
    }
    return name;
}

static const char *const part_prefixes[][5] = {
    [US_GEMMA3_PART_TEXT] = {"model.", "model.language_model.", "language_model.model.", NULL},
    [US_GEMMA3_PART_VISION] = {"vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_tower.",
                               "model.vision_tower.", NULL},
    [US_GEMMA3_PART_PROJECTOR] = {"multi_modal_projector.", "model.multi_modal_projector.", NULL},
};

/* Whether a stored tensor name is prefix + canon for one of part's prefixes. */
static int name_matches(const char *stored, us_gemma3_part part, const char *canon)
{
    if (part == US_GEMMA3_PART_TEXT) return !strcmp(canonical(stored), canon);
    for (const char *const *p = part_prefixes[part]; *p; p++) {
        size_t n = strlen(*p);
        if (!strncmp(stored, *p, n) && !strcmp(stored + n, canon)) return 1;
    }
    return 0;
}

static const us_st_tensor *find(const us_gemma3_weights *w, us_gemma3_part part, const char *canon, const char **file)
{
    for (int f = 0; f < w->n_files; f++) {
        const us_safetensors *st = w->files[f];
        for (int i = 0; i < us_safetensors_count(st); i++) {
            const us_st_tensor *t = us_safetensors_at(st, i);
            if (name_matches(t->name, part, canon)) {
                *file = us_safetensors_path(st);
                return t;
            }
        }
    }
    return NULL;
}

static void shape_text(char *out, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap - 24; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    snprintf(out + n, cap - n, "]");
}

/* Looks up canon in part and checks its shape is shape[0, ndim). */
static us_status get_tensor_nd(const us_gemma3_weights *w, const char *dir, us_gemma3_part part, const char *canon,
                               int ndim, const int64_t *shape, const us_st_tensor **out, const char **file,
                               us_error *err)
{
    const us_st_tensor *t = find(w, part, canon, file);
    if (!t) {
        char pre[200];
        size_t n = 0;
        pre[0] = '\0';
        for (const char *const *p = part_prefixes[part]; *p; p++)
            n += (size_t)snprintf(pre + n, sizeof pre - n, "%s%s", n ? ", " : "", *p);
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" is missing (looked for it under the prefixes %s)",
                            dir, canon, pre);
    }
    if (t->dtype < 0)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (F32, F16 or BF16 expected)", *file,
                            t->name, t->dtype_name);
    /* The runtime reads tensors in place as float and uint16_t arrays (us_gemma3_mat_row, the matmul
     * and vision kernels). safetensors does not require aligned data, though its writers align it (the
     * header padded to 8 bytes, widest dtypes first); the mapping starts on a page, so the address's
     * alignment is the file offset's. */
    if ((uintptr_t)t->data % t->elem_size)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "%s: tensor \"%s\" (%s) starts at a file offset that is not a multiple of its %zu-byte "
                            "elements; re-save the file with aligned tensors", *file, t->name, t->dtype_name,
                            t->elem_size);
    int same = t->ndim == ndim;
    for (int i = 0; i < ndim && same; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(want, sizeof want, ndim, shape);
        return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, the config implies %s", *file, t->name,
                            got, want);
    }
    *out = t;
    return US_OK;
}

/* The text decoder's (rows, cols) matrices, or (rows) vectors when cols == 0. */
static us_status get_tensor(const us_gemma3_weights *w, const char *dir, const char *canon, int64_t rows, int64_t cols,
                            const us_st_tensor **out, const char **file, us_error *err)
{
    const int64_t shape[2] = {rows, cols};
    return get_tensor_nd(w, dir, US_GEMMA3_PART_TEXT, canon, cols ? 2 : 1, shape, out, file, err);
}

us_status us_gemma3_weights_tensor(const us_gemma3_weights *w, const char *dir, us_gemma3_part part, const char *name,
                                   int ndim, const int64_t *shape, const void **data, us_dtype *dtype, us_error *err)
{
    const us_st_tensor *t;
    const char *file;
    us_status s = get_tensor_nd(w, dir, part, name, ndim, shape, &t, &file, err);
    if (s) return s;
    *data = t->data;
    *dtype = (us_dtype)t->dtype;
    return US_OK;
}

static us_status get_mat(const us_gemma3_weights *w, const char *dir, const char *canon, int64_t rows, int64_t cols,
                         us_gemma3_mat *m, us_error *err)
{
    const us_st_tensor *t;
    const char *file;
    us_status s = get_tensor(w, dir, canon, rows, cols, &t, &file, err);
    if (s) return s;
    m->data = t->data;
    m->dtype = (us_dtype)t->dtype;
    m->rows = rows;
    m->cols = cols;
    return US_OK;
}

/* A norm weight w (n) -> f32 (1 + w) in dst. */
static us_status get_norm(const us_gemma3_weights *w, const char *dir, const char *canon, int64_t n, float *dst,
                          us_error *err)
{
    const us_st_tensor *t;
    const char *file;
    us_status s = get_tensor(w, dir, canon, n, 0, &t, &file, err);
    if (s) return s;
    us_gemma3_mat m = {t->data, (us_dtype)t->dtype, 1, n, 0, 0};
    us_gemma3_mat_row(&m, 0, dst);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(dst[i]))
            return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" holds a non-finite value at %lld", file, t->name,
                                (long long)i);
        dst[i] += 1.0f;
    }
    return US_OK;
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Opens the shards named by the index's weight_map. */
static us_status open_sharded(us_gemma3_weights *w, const char *dir, const char *index, us_error *err)
{
    char *buf = NULL;
    us_status rs = us_gemma3_read_json_text(index, &buf, err);
    if (rs) return rs;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    if (!root) return us_error_set(err, US_ERR_FORMAT, "%s: not valid JSON", index);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return us_error_set(err, US_ERR_FORMAT, "%s: no \"weight_map\" object", index);
    }
    w->files = calloc(MAX_SHARDS, sizeof *w->files);
    if (!w->files) {
        cJSON_Delete(root);
        return us_error_set(err, US_ERR_NOMEM, "no memory for the shard list");
    }
    const char *names[MAX_SHARDS];
    int n_names = 0;
    us_status s = US_OK;
    for (const cJSON *e = map->child; e && !s; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            s = us_error_set(err, US_ERR_FORMAT, "%s: weight_map entry \"%s\" must be a file name in %s", index,
                             e->string, dir);
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_names && !seen; i++) seen = !strcmp(names[i], e->valuestring);
        if (seen) continue;
        if (n_names == MAX_SHARDS) {
            s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: more than %d shards", index, MAX_SHARDS);
            break;
        }
        names[n_names++] = e->valuestring;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        us_safetensors *st = NULL;
        s = us_safetensors_open(path, &st, err);
        if (!s) w->files[w->n_files++] = st;
    }
    cJSON_Delete(root);
    return s;
}

us_status us_gemma3_weights_alloc_layers(us_gemma3_weights *w, us_error *err)
{
    const us_gemma3_config *c = &w->cfg;
    const int64_t C = c->hidden_size, d = c->head_dim, L = c->num_layers;
    w->layers = calloc((size_t)L, sizeof *w->layers);
    w->norm_block = malloc((size_t)(C + L * (4 * C + 2 * d)) * sizeof *w->norm_block);
    if (!w->layers || !w->norm_block)
        return us_error_set(err, US_ERR_NOMEM, "no memory for %lld layers", (long long)L);
    /* the final norm first, then per layer: in, post-attention, pre-FF, post-FF (C each), q, k (d) */
    float *np = w->norm_block;
    w->final_norm = np, np += C;
    for (int64_t l = 0; l < L; l++) {
        us_gemma3_layer *y = &w->layers[l];
        y->in_norm = np, np += C;
        y->post_attn_norm = np, np += C;
        y->pre_ff_norm = np, np += C;
        y->post_ff_norm = np, np += C;
        y->q_norm = np, np += d;
        y->k_norm = np, np += d;
    }
    return US_OK;
}

us_status us_gemma3_weights_load(const char *dir, us_gemma3_weights **out, us_error *err)
{
    *out = NULL;
    {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode)) return us_gemma3_weights_load_gguf(dir, out, err);
    }
    us_gemma3_weights *w = calloc(1, sizeof *w);
    if (!w) return us_error_set(err, US_ERR_NOMEM, "no memory for the weights");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    us_status s = us_gemma3_config_load(path, &w->cfg, err);
    if (s) goto fail;

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (file_exists(path)) {
        w->files = calloc(1, sizeof *w->files);
        us_safetensors *st = NULL;
        if (!w->files) {
            s = us_error_set(err, US_ERR_NOMEM, "no memory for the shard list");
            goto fail;
        }
        if ((s = us_safetensors_open(path, &st, err))) goto fail;
        w->files[w->n_files++] = st;
    } else {
        char index[4096];
        snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
        if (!file_exists(index)) {
            s = us_error_set(err, US_ERR_IO, "%s: neither model.safetensors nor model.safetensors.index.json is there",
                             dir);
            goto fail;
        }
        if ((s = open_sharded(w, dir, index, err))) goto fail;
    }

    const us_gemma3_config *c = &w->cfg;
    const int64_t C = c->hidden_size, I = c->intermediate_size, d = c->head_dim, L = c->num_layers;
    const int64_t qd = (int64_t)c->num_heads * d, kd = (int64_t)c->num_kv_heads * d;
    if ((s = us_gemma3_weights_alloc_layers(w, err))) goto fail;
    if ((s = get_mat(w, dir, "embed_tokens.weight", c->vocab_size, C, &w->embed, err))) goto fail;
    if ((s = get_norm(w, dir, "norm.weight", C, w->final_norm, err))) goto fail;
    const char *lm_file;
    const us_st_tensor *lm = find(w, US_GEMMA3_PART_TEXT, "lm_head.weight", &lm_file);
    if (lm && !c->tie_word_embeddings) {
        if ((s = get_mat(w, dir, "lm_head.weight", c->vocab_size, C, &w->lm_head, err))) goto fail;
    } else if (!c->tie_word_embeddings) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: tie_word_embeddings is false but tensor \"lm_head.weight\" is missing",
                         dir);
        goto fail;
    } else {
        w->lm_head = w->embed;
    }

    for (int l = 0; l < L; l++) {
        us_gemma3_layer *y = &w->layers[l];
        char n[160];
#define NAME(s_) (snprintf(n, sizeof n, "layers.%d.%s", l, s_), n)
        if ((s = get_mat(w, dir, NAME("self_attn.q_proj.weight"), qd, C, &y->q, err)) ||
            (s = get_mat(w, dir, NAME("self_attn.k_proj.weight"), kd, C, &y->k, err)) ||
            (s = get_mat(w, dir, NAME("self_attn.v_proj.weight"), kd, C, &y->v, err)) ||
            (s = get_mat(w, dir, NAME("self_attn.o_proj.weight"), C, qd, &y->o, err)) ||
            (s = get_mat(w, dir, NAME("mlp.gate_proj.weight"), I, C, &y->gate, err)) ||
            (s = get_mat(w, dir, NAME("mlp.up_proj.weight"), I, C, &y->up, err)) ||
            (s = get_mat(w, dir, NAME("mlp.down_proj.weight"), C, I, &y->down, err)) ||
            (s = get_norm(w, dir, NAME("input_layernorm.weight"), C, y->in_norm, err)) ||
            (s = get_norm(w, dir, NAME("post_attention_layernorm.weight"), C, y->post_attn_norm, err)) ||
            (s = get_norm(w, dir, NAME("pre_feedforward_layernorm.weight"), C, y->pre_ff_norm, err)) ||
            (s = get_norm(w, dir, NAME("post_feedforward_layernorm.weight"), C, y->post_ff_norm, err)) ||
            (s = get_norm(w, dir, NAME("self_attn.q_norm.weight"), d, y->q_norm, err)) ||
            (s = get_norm(w, dir, NAME("self_attn.k_norm.weight"), d, y->k_norm, err)))
            goto fail;
#undef NAME
    }
    /* transformers multiplies by the scale cast to the weight dtype (50.5 for hidden 2560 in bf16) */
    float scale = sqrtf((float)C);
    if (w->embed.dtype == US_BF16) scale = us_bf16_to_f32(us_f32_to_bf16(scale));
    if (w->embed.dtype == US_F16) scale = us_f16_to_f32(us_f32_to_f16(scale));
    w->embed_scale = scale;

    /* a Gemma3ForConditionalGeneration: the vision tower and the projector */
    int has_vision = 0;
    us_siglip_config vc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((s = us_gemma3_vision_config_load(path, &has_vision, &vc, err))) goto fail;
    if (has_vision && (s = us_gemma3_vision_load(w, dir, &vc, err))) goto fail;
    *out = w;
    return US_OK;
fail:
    us_gemma3_weights_free(&w);
    return s;
}

const struct us_gguf *us_gemma3_weights_gguf(const us_gemma3_weights *w) { return w ? w->gguf : NULL; }

void us_gemma3_weights_free(us_gemma3_weights **pw)
{
    if (!pw || !*pw) return;
    us_gemma3_weights *w = *pw;
    for (int i = 0; i < w->n_files; i++) {
        us_safetensors *st = w->files[i];
        us_safetensors_close(&st);
    }
    free(w->files);
    us_gguf *g = w->gguf;
    us_gguf_close(&g);
    free(w->layers);
    free(w->norm_block);
    us_gemma3_vision_free(&w->vision);
    free(w);
    *pw = NULL;
}
