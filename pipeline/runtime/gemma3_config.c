/* gemma3_config.c: config.json -> us_gemma3_config, both transformers forms, with Gemma3TextConfig
 * defaults for missing fields and messages naming the file and the field. */
#include "gemma3_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void us_gemma3_config_default(us_gemma3_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab_size = 262208;
    c->hidden_size = 2304;
    c->intermediate_size = 9216;
    c->num_layers = 26;
    c->num_heads = 8;
    c->num_kv_heads = 4;
    c->head_dim = 256;
    c->query_pre_attn_scalar = 256.0f;
    c->sliding_window = 4096;
    c->max_position_embeddings = 131072;
    c->rms_norm_eps = 1e-6f;
    c->rope_global_base = 1e6f;
    c->rope_local_base = 1e4f;
    c->rope_global_factor = 1.0f;
    c->tie_word_embeddings = 1;
    c->bos_id = 2;
    c->eos_id = 1;
    c->pad_id = 0;
    c->image_token_id = 262144;
    c->boi_id = 255999;
    c->eoi_id = 256000;
    c->mm_tokens_per_image = 256;
}

/* An integer field: absent or null keeps *out; anything but a whole number is an error. A list takes its
 * first element (eos lists). where prefixes the field's name in messages ("" or "vision_config."). */
static us_status get_int_in(const cJSON *o, const char *where, const char *key, int *out, const char *path,
                            us_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return US_OK;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) v = cJSON_GetArrayItem(v, 0); /* eos lists */
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
        return us_error_set(err, US_ERR_FORMAT, "%s: field \"%s%s\" must be an integer", path, where, key);
    *out = (int)v->valuedouble;
    return US_OK;
}

static us_status get_int(const cJSON *o, const char *key, int *out, const char *path, us_error *err)
{
    return get_int_in(o, "", key, out, path, err);
}

static us_status get_float_in(const cJSON *o, const char *where, const char *key, float *out, const char *path,
                              us_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return US_OK;
    if (!cJSON_IsNumber(v))
        return us_error_set(err, US_ERR_FORMAT, "%s: field \"%s%s\" must be a number", path, where, key);
    *out = (float)v->valuedouble;
    return US_OK;
}

static us_status get_float(const cJSON *o, const char *key, float *out, const char *path, us_error *err)
{
    return get_float_in(o, "", key, out, path, err);
}

/* An integer field under either of two names (transformers' attribute_map: image_token_index and
 * image_token_id name the same thing); the first name wins when both are there. */
static us_status get_int2(const cJSON *o, const char *key, const char *alias, int *out, const char *path,
                          us_error *err)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key)) return get_int(o, key, out, path, err);
    return get_int(o, alias, out, path, err);
}

/* One RoPE parameter object ({rope_type|type, factor, rope_theta}): base and linear factor. */
static us_status parse_rope(const cJSON *r, const char *field, float *base, float *factor, const char *path,
                            us_error *err)
{
    if (!r || cJSON_IsNull(r)) return US_OK;
    if (!cJSON_IsObject(r)) return us_error_set(err, US_ERR_FORMAT, "%s: field \"%s\" must be an object", path, field);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(r, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "default";
    us_status s = get_float(r, "rope_theta", base, path, err);
    if (s) return s;
    if (!strcmp(type, "linear")) {
        float f = 1.0f;
        if ((s = get_float(r, "factor", &f, path, err))) return s;
        *factor = f;
    } else if (strcmp(type, "default") != 0) {
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"%s\": rope_type \"%s\" is not supported (default, linear)",
                            path, field, type);
    }
    return US_OK;
}

us_status us_gemma3_config_parse(const char *json, const char *path, us_gemma3_config *c, us_error *err)
{
    us_gemma3_config_default(c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return us_error_set(err, US_ERR_FORMAT, "%s: not a JSON object", path);
    }
    const cJSON *o = root;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (cJSON_IsObject(tc)) o = tc;

    us_status s = US_OK;
    int pattern = 6;
    if ((s = get_int(o, "vocab_size", &c->vocab_size, path, err)) ||
        (s = get_int(o, "hidden_size", &c->hidden_size, path, err)) ||
        (s = get_int(o, "intermediate_size", &c->intermediate_size, path, err)) ||
        (s = get_int(o, "num_hidden_layers", &c->num_layers, path, err)) ||
        (s = get_int(o, "num_attention_heads", &c->num_heads, path, err)) ||
        (s = get_int(o, "num_key_value_heads", &c->num_kv_heads, path, err)) ||
        (s = get_int(o, "head_dim", &c->head_dim, path, err)) ||
        (s = get_float(o, "query_pre_attn_scalar", &c->query_pre_attn_scalar, path, err)) ||
        (s = get_int(o, "sliding_window", &c->sliding_window, path, err)) ||
        (s = get_int(o, "sliding_window_pattern", &pattern, path, err)) ||
        (s = get_int(o, "max_position_embeddings", &c->max_position_embeddings, path, err)) ||
        (s = get_float(o, "rms_norm_eps", &c->rms_norm_eps, path, err)) ||
        (s = get_float(o, "rope_theta", &c->rope_global_base, path, err)) ||
        (s = get_float(o, "rope_local_base_freq", &c->rope_local_base, path, err)) ||
        (s = get_int(o, "bos_token_id", &c->bos_id, path, err)) ||
        (s = get_int(o, "eos_token_id", &c->eos_id, path, err)) ||
        (s = get_int(o, "pad_token_id", &c->pad_id, path, err)))
        goto done;
    /* the image prompt's ids sit beside text_config, on the outer object */
    if ((s = get_int2(root, "image_token_index", "image_token_id", &c->image_token_id, path, err)) ||
        (s = get_int2(root, "boi_token_index", "boi_token_id", &c->boi_id, path, err)) ||
        (s = get_int2(root, "eoi_token_index", "eoi_token_id", &c->eoi_id, path, err)) ||
        (s = get_int(root, "mm_tokens_per_image", &c->mm_tokens_per_image, path, err)))
        goto done;

    /* tie_word_embeddings may sit on the outer (VLM) object */
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(o, "tie_word_embeddings");
    if (!tie) tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsNull(tie)) {
        if (!cJSON_IsBool(tie)) {
            s = us_error_set(err, US_ERR_FORMAT, "%s: field \"tie_word_embeddings\" must be a boolean", path);
            goto done;
        }
        c->tie_word_embeddings = cJSON_IsTrue(tie);
    }

    const char *act_keys[] = {"hidden_activation", "hidden_act"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, act_keys[i]);
        if (a && !cJSON_IsNull(a) && (!cJSON_IsString(a) || (strcmp(a->valuestring, "gelu_pytorch_tanh") &&
                                                             strcmp(a->valuestring, "gelu_tanh")))) {
            s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"%s\": only gelu_pytorch_tanh is supported", path,
                             act_keys[i]);
            goto done;
        }
    }
    const cJSON *bidir = cJSON_GetObjectItemCaseSensitive(o, "use_bidirectional_attention");
    if (cJSON_IsTrue(bidir)) {
        s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"use_bidirectional_attention\": only causal decoders are supported",
                         path);
        goto done;
    }
    const char *cap_keys[] = {"final_logit_softcapping", "attn_logit_softcapping"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, cap_keys[i]);
        if (a && !cJSON_IsNull(a)) {
            s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"%s\": soft-capping is not supported (Gemma 3 has none)",
                             path, cap_keys[i]);
            goto done;
        }
    }

    /* RoPE: old form first, then rope_parameters overrides */
    if ((s = parse_rope(cJSON_GetObjectItemCaseSensitive(o, "rope_scaling"), "rope_scaling", &c->rope_global_base,
                        &c->rope_global_factor, path, err)))
        goto done;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(o, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        const cJSON *full = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
        const cJSON *slide = cJSON_GetObjectItemCaseSensitive(rp, "sliding_attention");
        if (full || slide) {
            float unused = 1.0f;
            if ((s = parse_rope(full, "rope_parameters.full_attention", &c->rope_global_base, &c->rope_global_factor,
                                path, err)) ||
                (s = parse_rope(slide, "rope_parameters.sliding_attention", &c->rope_local_base, &unused, path, err)))
                goto done;
            if (unused != 1.0f) {
                s = us_error_set(err, US_ERR_UNSUPPORTED,
                                 "%s: field \"rope_parameters.sliding_attention\": scaling on sliding layers is not supported",
                                 path);
                goto done;
            }
        } else if ((s = parse_rope(rp, "rope_parameters", &c->rope_global_base, &c->rope_global_factor, path, err))) {
            goto done;
        }
    }

    if (c->num_layers < 1 || c->num_layers > US_GEMMA3_MAX_LAYERS) {
        s = us_error_set(err, US_ERR_INVALID, "%s: field \"num_hidden_layers\" = %d outside [1, %d]", path,
                         c->num_layers, US_GEMMA3_MAX_LAYERS);
        goto done;
    }
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(o, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->num_layers) {
            s = us_error_set(err, US_ERR_FORMAT, "%s: field \"layer_types\" must be an array of num_hidden_layers (%d) strings",
                             path, c->num_layers);
            goto done;
        }
        for (int l = 0; l < c->num_layers; l++) {
            const cJSON *e = cJSON_GetArrayItem(lt, l);
            if (cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")) {
                c->is_global[l] = 1;
            } else if (cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention")) {
                c->is_global[l] = 0;
            } else {
                s = us_error_set(err, US_ERR_FORMAT,
                                 "%s: field \"layer_types\"[%d] must be \"full_attention\" or \"sliding_attention\"", path, l);
                goto done;
            }
        }
    } else {
        if (pattern < 1) {
            s = us_error_set(err, US_ERR_INVALID, "%s: field \"sliding_window_pattern\" = %d must be >= 1", path, pattern);
            goto done;
        }
        for (int l = 0; l < c->num_layers; l++) c->is_global[l] = (uint8_t)((l + 1) % pattern == 0);
    }
    s = us_gemma3_config_validate(c, path, err);
done:
    cJSON_Delete(root);
    return s;
}

us_status us_gemma3_config_validate(const us_gemma3_config *c, const char *path, us_error *err)
{
#define POS(f, name)                                                                                          \
    if (c->f < 1) return us_error_set(err, US_ERR_INVALID, "%s: field \"%s\" = %d must be positive", path, name, c->f)
    POS(vocab_size, "vocab_size");
    POS(hidden_size, "hidden_size");
    POS(intermediate_size, "intermediate_size");
    POS(num_layers, "num_hidden_layers");
    POS(num_heads, "num_attention_heads");
    POS(num_kv_heads, "num_key_value_heads");
    POS(head_dim, "head_dim");
    POS(sliding_window, "sliding_window");
    POS(max_position_embeddings, "max_position_embeddings");
    POS(mm_tokens_per_image, "mm_tokens_per_image");
#undef POS
    if (c->image_token_id < 0 || c->boi_id < 0 || c->eoi_id < 0)
        return us_error_set(err, US_ERR_INVALID, "%s: fields \"image_token_index\" (%d), \"boi_token_index\" (%d), "
                            "\"eoi_token_index\" (%d) must be >= 0", path, c->image_token_id, c->boi_id, c->eoi_id);
    if (c->num_layers > US_GEMMA3_MAX_LAYERS)
        return us_error_set(err, US_ERR_INVALID, "%s: field \"num_hidden_layers\" = %d exceeds %d", path, c->num_layers,
                            US_GEMMA3_MAX_LAYERS);
    if (c->num_heads % c->num_kv_heads)
        return us_error_set(err, US_ERR_INVALID,
                            "%s: field \"num_attention_heads\" = %d is not a multiple of num_key_value_heads = %d", path,
                            c->num_heads, c->num_kv_heads);
    if (c->head_dim % 8 || c->head_dim > 1024)
        return us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"head_dim\" = %d must be a multiple of 8, at most 1024",
                            path, c->head_dim);
    if (!(c->query_pre_attn_scalar > 0.0f))
        return us_error_set(err, US_ERR_INVALID, "%s: field \"query_pre_attn_scalar\" must be positive", path);
    if (!(c->rms_norm_eps > 0.0f) || !(c->rms_norm_eps < 1.0f))
        return us_error_set(err, US_ERR_INVALID, "%s: field \"rms_norm_eps\" must lie in (0, 1)", path);
    if (!(c->rope_global_base > 1.0f) || !(c->rope_local_base > 1.0f))
        return us_error_set(err, US_ERR_INVALID, "%s: field \"rope_theta\" / \"rope_local_base_freq\" must exceed 1", path);
    if (!(c->rope_global_factor >= 1.0f))
        return us_error_set(err, US_ERR_INVALID, "%s: field \"rope_scaling.factor\" must be >= 1", path);
    return US_OK;
}

us_status us_gemma3_read_json_text(const char *path, char **out, us_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || n > (64L << 20) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return us_error_set(err, US_ERR_IO, "%s: cannot size the file (or it exceeds 64 MiB)", path);
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return us_error_set(err, US_ERR_NOMEM, "%s: no memory for %ld bytes", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return us_error_set(err, US_ERR_IO, "%s: short read", path);
    }
    buf[n] = '\0';
    *out = buf;
    return US_OK;
}

us_status us_gemma3_config_load(const char *path, us_gemma3_config *c, us_error *err)
{
    char *buf;
    us_status s = us_gemma3_read_json_text(path, &buf, err);
    if (s) return s;
    s = us_gemma3_config_parse(buf, path, c, err);
    free(buf);
    return s;
}

/* image_size / patch_size: an integer, or a [height, width] pair of equal integers. */
static us_status get_side(const cJSON *o, const char *key, int *out, const char *path, us_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(v)) {
        const cJSON *h = cJSON_GetArrayItem(v, 0), *w = cJSON_GetArrayItem(v, 1);
        if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) || h->valuedouble != w->valuedouble)
            return us_error_set(err, US_ERR_UNSUPPORTED,
                                "%s: field \"vision_config.%s\": only square sizes (an integer or [n, n]) are "
                                "supported", path, key);
        v = h;
    }
    if (!v || cJSON_IsNull(v)) return US_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e6)
        return us_error_set(err, US_ERR_FORMAT, "%s: field \"vision_config.%s\" must be an integer", path, key);
    *out = (int)v->valuedouble;
    return US_OK;
}

us_status us_gemma3_vision_config_parse(const char *json, const char *path, int *present, us_siglip_config *vc,
                                        us_error *err)
{
    *present = 0;
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return us_error_set(err, US_ERR_FORMAT, "%s: not a JSON object", path);
    }
    us_status s = US_OK;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if (!o || cJSON_IsNull(o)) goto done;
    if (!cJSON_IsObject(o)) {
        s = us_error_set(err, US_ERR_FORMAT, "%s: field \"vision_config\" must be an object", path);
        goto done;
    }
    us_siglip_config_default(vc);
    const char *w = "vision_config.";
    if ((s = get_side(o, "image_size", &vc->image_size, path, err)) ||
        (s = get_side(o, "patch_size", &vc->patch_size, path, err)) ||
        (s = get_int_in(o, w, "num_channels", &vc->num_channels, path, err)) ||
        (s = get_int_in(o, w, "hidden_size", &vc->hidden_size, path, err)) ||
        (s = get_int_in(o, w, "intermediate_size", &vc->intermediate_size, path, err)) ||
        (s = get_int_in(o, w, "num_hidden_layers", &vc->num_layers, path, err)) ||
        (s = get_int_in(o, w, "num_attention_heads", &vc->num_heads, path, err)) ||
        (s = get_float_in(o, w, "layer_norm_eps", &vc->layer_norm_eps, path, err)))
        goto done;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "siglip_vision_model") != 0) {
        s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"vision_config.model_type\" = \"%s\": only "
                         "siglip_vision_model is supported", path, mt->valuestring);
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (act && !cJSON_IsNull(act) &&
        (!cJSON_IsString(act) ||
         (strcmp(act->valuestring, "gelu_pytorch_tanh") && strcmp(act->valuestring, "gelu_tanh")))) {
        s = us_error_set(err, US_ERR_UNSUPPORTED, "%s: field \"vision_config.hidden_act\": only gelu_pytorch_tanh is "
                         "supported", path);
        goto done;
    }
    if ((s = us_siglip_config_validate(vc, path, err))) goto done;
    *present = 1;
done:
    cJSON_Delete(root);
    return s;
}

us_status us_gemma3_vision_config_load(const char *path, int *present, us_siglip_config *vc, us_error *err)
{
    char *buf;
    us_status s = us_gemma3_read_json_text(path, &buf, err);
    if (s) return s;
    s = us_gemma3_vision_config_parse(buf, path, present, vc, err);
    free(buf);
    return s;
}
