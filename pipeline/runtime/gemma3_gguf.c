/* gemma3_gguf.c: GGUF (llama.cpp) Gemma 3 checkpoints -> config, weights, tokenizer (gemma3_gguf.h).
 * Matrices stay in the mapping in their ggml type; norms are copied as f32 as stored (1 + w already). */
#include "gemma3_gguf.h"

#include "ggml_quant.h"
#include "sp_model_proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static us_status get_i(const us_gguf *g, const char *key, int *out, us_error *err)
{
    int64_t v;
    us_status s = us_gguf_get_int(g, key, &v, err);
    if (s) return s;
    if (v < 1 || v > (1 << 30))
        return us_error_set(err, US_ERR_FORMAT, "%s: key \"%s\" = %lld is out of range", us_gguf_path(g), key,
                            (long long)v);
    *out = (int)v;
    return US_OK;
}

us_status us_gemma3_config_from_gguf(const us_gguf *g, us_gemma3_config *c, us_error *err)
{
    const char *path = us_gguf_path(g), *arch = NULL;
    us_status s = us_gguf_get_string(g, "general.architecture", &arch, err);
    if (s) return s;
    if (strcmp(arch, "gemma3"))
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: general.architecture is \"%s\", gemma3 expected", path, arch);
    us_gemma3_config_default(c);
    double f;
    if ((s = get_i(g, "gemma3.context_length", &c->max_position_embeddings, err)) ||
        (s = get_i(g, "gemma3.embedding_length", &c->hidden_size, err)) ||
        (s = get_i(g, "gemma3.block_count", &c->num_layers, err)) ||
        (s = get_i(g, "gemma3.feed_forward_length", &c->intermediate_size, err)) ||
        (s = get_i(g, "gemma3.attention.head_count", &c->num_heads, err)) ||
        (s = get_i(g, "gemma3.attention.head_count_kv", &c->num_kv_heads, err)) ||
        (s = get_i(g, "gemma3.attention.key_length", &c->head_dim, err)) ||
        (s = get_i(g, "gemma3.attention.sliding_window", &c->sliding_window, err)))
        return s;
    if ((s = us_gguf_get_float(g, "gemma3.rope.freq_base", &f, err))) return s;
    c->rope_global_base = (float)f;
    if ((s = us_gguf_get_float(g, "gemma3.attention.layer_norm_rms_epsilon", &f, err))) return s;
    c->rms_norm_eps = (float)f;
    c->rope_local_base = 10000.0f;
    c->rope_global_factor = 1.0f;
    const char *stype = NULL;
    if (us_gguf_find_kv(g, "gemma3.rope.scaling.type")) {
        if ((s = us_gguf_get_string(g, "gemma3.rope.scaling.type", &stype, err))) return s;
        if (!strcmp(stype, "linear")) {
            if ((s = us_gguf_get_float(g, "gemma3.rope.scaling.factor", &f, err))) return s;
            c->rope_global_factor = (float)f;
        } else if (strcmp(stype, "none")) {
            return us_error_set(err, US_ERR_UNSUPPORTED, "%s: key \"gemma3.rope.scaling.type\" = \"%s\" (linear or none)",
                                path, stype);
        }
    }
    c->query_pre_attn_scalar = (float)c->head_dim;
    if (us_gguf_find_kv(g, "gemma3.attention.query_pre_attn_scalar")) {
        if ((s = us_gguf_get_float(g, "gemma3.attention.query_pre_attn_scalar", &f, err))) return s;
        c->query_pre_attn_scalar = (float)f;
    }
    if (c->num_layers > US_GEMMA3_MAX_LAYERS)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: gemma3.block_count = %d exceeds %d", path, c->num_layers,
                            US_GEMMA3_MAX_LAYERS);
    int pattern = 6;
    if (us_gguf_find_kv(g, "gemma3.attention.sliding_window_pattern")) {
        const us_gguf_kv *kv = us_gguf_find_kv(g, "gemma3.attention.sliding_window_pattern");
        if (kv->type == US_GGUF_ARRAY) { /* per layer: true = sliding */
            if (kv->count != (uint64_t)c->num_layers)
                return us_error_set(err, US_ERR_FORMAT, "%s: key \"%s\" has %llu entries for %d layers", path, kv->key,
                                    (unsigned long long)kv->count, c->num_layers);
            for (int l = 0; l < c->num_layers; l++) {
                int64_t v;
                if (us_gguf_kv_int(kv, (uint64_t)l, &v))
                    return us_error_set(err, US_ERR_FORMAT, "%s: key \"%s\": entry %d is not a bool", path, kv->key, l);
                c->is_global[l] = v == 0;
            }
            pattern = 0;
        } else if ((s = get_i(g, "gemma3.attention.sliding_window_pattern", &pattern, err))) {
            return s;
        }
    }
    if (pattern)
        for (int l = 0; l < c->num_layers; l++) c->is_global[l] = (l + 1) % pattern == 0;
    int64_t v;
    if (!us_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v, NULL)) c->bos_id = (int)v;
    if (!us_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v, NULL)) c->eos_id = (int)v;
    if (!us_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &v, NULL)) c->pad_id = (int)v;
    const us_gguf_tensor *e = us_gguf_find_tensor(g, "token_embd.weight");
    if (!e) return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"token_embd.weight\" is missing", path);
    if (e->n_rows > (1 << 30)) return us_error_set(err, US_ERR_FORMAT, "%s: token_embd.weight has too many rows", path);
    c->vocab_size = (int)e->n_rows;
    c->tie_word_embeddings = us_gguf_find_tensor(g, "output.weight") == NULL;
    return us_gemma3_config_validate(c, path, err);
}

/* Looks name up and checks it is (rows, cols), or (rows) when cols == 0. */
static us_status get_tensor(const us_gguf *g, const char *name, int64_t rows, int64_t cols,
                            const us_gguf_tensor **out, us_error *err)
{
    const char *path = us_gguf_path(g);
    const us_gguf_tensor *t = us_gguf_find_tensor(g, name);
    if (!t) return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" is missing", path, name);
    if (!us_ggml_can_dequantize(t->type))
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: tensor \"%s\" has ggml type %s, which has no dequantiser", path,
                            name, us_ggml_type_name(t->type));
    const int want = cols ? 2 : 1;
    if (t->n_dims != want || (cols ? (t->ne[0] != cols || t->ne[1] != rows) : t->ne[0] != rows))
        return us_error_set(err, US_ERR_FORMAT,
                            "%s: tensor \"%s\" has %d dims, ne = [%lld, %lld]; the config implies ne = [%lld, %lld]",
                            path, name, t->n_dims, (long long)t->ne[0], (long long)t->ne[1],
                            (long long)(cols ? cols : rows), (long long)(cols ? rows : 1));
    *out = t;
    return US_OK;
}

static us_status get_mat(const us_gguf *g, const char *name, int64_t rows, int64_t cols, us_gemma3_mat *m,
                         us_error *err)
{
    const us_gguf_tensor *t = NULL;
    us_status s = get_tensor(g, name, rows, cols, &t, err);
    if (s) return s;
    memset(m, 0, sizeof *m);
    m->data = t->data;
    m->rows = rows;
    m->cols = cols;
    switch (t->type) {
    case US_GGML_F32: m->dtype = US_F32; break;
    case US_GGML_F16: m->dtype = US_F16; break;
    case US_GGML_BF16: m->dtype = US_BF16; break;
    default:
        m->dtype = US_F32;
        m->ggml_type = t->type + 1;
        m->row_bytes = t->row_bytes;
    }
    return US_OK;
}

/* A norm vector, used as stored: llama.cpp's converter has added the 1 already. */
static us_status get_norm(const us_gguf *g, const char *name, int64_t n, float *dst, us_error *err)
{
    const us_gguf_tensor *t = NULL;
    us_status s = get_tensor(g, name, n, 0, &t, err);
    if (s || (s = us_gguf_tensor_row(g, t, 0, dst, err))) return s;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return us_error_set(err, US_ERR_FORMAT, "%s: tensor \"%s\" holds a non-finite value at %lld", us_gguf_path(g),
                                name, (long long)i);
    return US_OK;
}

/* Every tensor the weights take, present with the shape the config implies, checked before anything
 * is allocated from the config's sizes: the norm copies (C + L (4C + 2d) floats) are then backed by the
 * file's bytes rather than by a metadata field (FUZZING.md, review finding R4: embedding_length 2^30 in an
 * 11 KB file asked for 36 GB). */
static us_status check_tensors(const us_gguf *g, const us_gemma3_config *c, us_error *err)
{
    const int64_t C = c->hidden_size, I = c->intermediate_size, d = c->head_dim;
    const int64_t qd = (int64_t)c->num_heads * d, kd = (int64_t)c->num_kv_heads * d;
    const us_gguf_tensor *t;
    us_status s;
    if ((s = get_tensor(g, "token_embd.weight", c->vocab_size, C, &t, err)) ||
        (s = get_tensor(g, "output_norm.weight", C, 0, &t, err)) ||
        (!c->tie_word_embeddings && (s = get_tensor(g, "output.weight", c->vocab_size, C, &t, err))))
        return s;
    const struct {
        const char *name;
        int64_t rows, cols;
    } per_layer[] = {
        {"attn_q.weight", qd, C},     {"attn_k.weight", kd, C},           {"attn_v.weight", kd, C},
        {"attn_output.weight", C, qd}, {"ffn_gate.weight", I, C},          {"ffn_up.weight", I, C},
        {"ffn_down.weight", C, I},     {"attn_norm.weight", C, 0},         {"post_attention_norm.weight", C, 0},
        {"ffn_norm.weight", C, 0},     {"post_ffw_norm.weight", C, 0},     {"attn_q_norm.weight", d, 0},
        {"attn_k_norm.weight", d, 0},
    };
    for (int l = 0; l < c->num_layers; l++)
        for (size_t k = 0; k < sizeof per_layer / sizeof per_layer[0]; k++) {
            char n[96];
            snprintf(n, sizeof n, "blk.%d.%s", l, per_layer[k].name);
            if ((s = get_tensor(g, n, per_layer[k].rows, per_layer[k].cols, &t, err))) return s;
        }
    return US_OK;
}

us_status us_gemma3_weights_load_gguf(const char *path, us_gemma3_weights **out, us_error *err)
{
    *out = NULL;
    us_gemma3_weights *w = calloc(1, sizeof *w);
    if (!w) return us_error_set(err, US_ERR_NOMEM, "no memory for the weights");
    us_gguf *g = NULL;
    us_status s = us_gguf_open(path, &g, err);
    if (s) goto fail;
    w->gguf = g;
    if ((s = us_gemma3_config_from_gguf(g, &w->cfg, err))) goto fail;

    const us_gemma3_config *c = &w->cfg;
    const int64_t C = c->hidden_size, I = c->intermediate_size, d = c->head_dim, L = c->num_layers;
    const int64_t qd = (int64_t)c->num_heads * d, kd = (int64_t)c->num_kv_heads * d;
    if ((s = check_tensors(g, &w->cfg, err)) || (s = us_gemma3_weights_alloc_layers(w, err))) goto fail;
    if ((s = get_mat(g, "token_embd.weight", c->vocab_size, C, &w->embed, err))) goto fail;
    if ((s = get_norm(g, "output_norm.weight", C, w->final_norm, err))) goto fail;
    if (c->tie_word_embeddings)
        w->lm_head = w->embed;
    else if ((s = get_mat(g, "output.weight", c->vocab_size, C, &w->lm_head, err)))
        goto fail;

    for (int l = 0; l < L; l++) {
        us_gemma3_layer *y = &w->layers[l];
        char n[96];
#define NAME(s_) (snprintf(n, sizeof n, "blk.%d.%s", l, s_), n)
        if ((s = get_mat(g, NAME("attn_q.weight"), qd, C, &y->q, err)) ||
            (s = get_mat(g, NAME("attn_k.weight"), kd, C, &y->k, err)) ||
            (s = get_mat(g, NAME("attn_v.weight"), kd, C, &y->v, err)) ||
            (s = get_mat(g, NAME("attn_output.weight"), C, qd, &y->o, err)) ||
            (s = get_mat(g, NAME("ffn_gate.weight"), I, C, &y->gate, err)) ||
            (s = get_mat(g, NAME("ffn_up.weight"), I, C, &y->up, err)) ||
            (s = get_mat(g, NAME("ffn_down.weight"), C, I, &y->down, err)) ||
            (s = get_norm(g, NAME("attn_norm.weight"), C, y->in_norm, err)) ||
            (s = get_norm(g, NAME("post_attention_norm.weight"), C, y->post_attn_norm, err)) ||
            (s = get_norm(g, NAME("ffn_norm.weight"), C, y->pre_ff_norm, err)) ||
            (s = get_norm(g, NAME("post_ffw_norm.weight"), C, y->post_ff_norm, err)) ||
            (s = get_norm(g, NAME("attn_q_norm.weight"), d, y->q_norm, err)) ||
            (s = get_norm(g, NAME("attn_k_norm.weight"), d, y->k_norm, err)))
            goto fail;
#undef NAME
    }
    /* transformers dequantises GGUF to f32: the scale is sqrt(C) in f32, unrounded (bf16/f16 files: rounded) */
    float scale = sqrtf((float)C);
    if (w->embed.dtype == US_BF16 && !w->embed.ggml_type) scale = us_bf16_to_f32(us_f32_to_bf16(scale));
    if (w->embed.dtype == US_F16 && !w->embed.ggml_type) scale = us_f16_to_f32(us_f32_to_f16(scale));
    w->embed_scale = scale;
    *out = w;
    return US_OK;
fail:
    us_gemma3_weights_free(&w);
    return s;
}

us_status us_gemma3_tokenizer_from_gguf(const us_gguf *g, us_tokenizer **out, us_error *err)
{
    *out = NULL;
    const char *path = us_gguf_path(g);
    const us_gguf_kv *tk, *sc, *ty;
    us_status s;
    if ((s = us_gguf_get_array(g, "tokenizer.ggml.tokens", &tk, err)) ||
        (s = us_gguf_get_array(g, "tokenizer.ggml.scores", &sc, err)) ||
        (s = us_gguf_get_array(g, "tokenizer.ggml.token_type", &ty, err)))
        return s;
    if (tk->elem_type != US_GGUF_STRING || tk->count == 0 || tk->count > (1u << 30))
        return us_error_set(err, US_ERR_FORMAT, "%s: tokenizer.ggml.tokens must be a non-empty string array", path);
    if (sc->count != tk->count || ty->count != tk->count)
        return us_error_set(err, US_ERR_FORMAT, "%s: tokenizer.ggml.tokens / scores / token_type have %llu / %llu / %llu "
                            "entries", path, (unsigned long long)tk->count, (unsigned long long)sc->count,
                            (unsigned long long)ty->count);
    const int n = (int)tk->count;
    const char **pieces = malloc((size_t)n * sizeof *pieces);
    float *scores = malloc((size_t)n * sizeof *scores);
    int *types = malloc((size_t)n * sizeof *types);
    uint8_t *proto = NULL;
    size_t len = 0;
    s = pieces && scores && types ? US_OK : us_error_set(err, US_ERR_NOMEM, "no memory for %d pieces", n);
    for (int i = 0; i < n && !s; i++) {
        const us_gguf_str *p = us_gguf_kv_str(tk, (uint64_t)i);
        double f;
        int64_t t;
        if (!p || us_gguf_kv_float(sc, (uint64_t)i, &f) || us_gguf_kv_int(ty, (uint64_t)i, &t))
            s = us_error_set(err, US_ERR_FORMAT, "%s: tokenizer entry %d is malformed", path, i);
        else {
            pieces[i] = p->s;
            scores[i] = (float)f;
            types[i] = (int)t;
        }
    }
    if (!s) {
        us_sp_settings st = us_sp_settings_gemma();
        int64_t v;
        if (!us_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v, NULL)) st.bos_id = (int32_t)v;
        if (!us_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v, NULL)) st.eos_id = (int32_t)v;
        if (!us_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &v, NULL)) st.unk_id = (int32_t)v;
        if (!us_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &v, NULL)) st.pad_id = (int32_t)v;
        /* llama.cpp's converter writes <unk> as CONTROL; SentencePiece needs it UNKNOWN */
        int n_unk = 0;
        for (int i = 0; i < n; i++) n_unk += types[i] == US_SP_UNKNOWN;
        if (n_unk == 0 && st.unk_id >= 0 && st.unk_id < n && types[st.unk_id] == US_SP_CONTROL)
            types[st.unk_id] = US_SP_UNKNOWN;
        s = us_sp_model_proto_build(pieces, scores, types, n, &st, &proto, &len, err);
        if (s && err) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            s = us_error_set(err, s, "%s: tokenizer vocabulary: %s", path, msg);
        }
    }
    free(pieces), free(scores), free(types);
    if (!s) s = us_tokenizer_create_from_proto(proto, len, out, err);
    free(proto);
    if (!s && us_tokenizer_piece_to_id(*out, "<image_soft_token>") < 0) {
        const int32_t soft = n <= 262144 ? 262144 : n;
        s = us_tokenizer_add_special(*out, "<image_soft_token>", soft, err);
        if (s) us_tokenizer_free(out);
    }
    return s;
}
