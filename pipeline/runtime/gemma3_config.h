/* gemma3_config.h: the Gemma 3 text-decoder configuration, read from a Hugging Face config.json.
 *
 * Accepts the old form (rope_theta, rope_local_base_freq, rope_scaling, sliding_window_pattern) and
 * transformers 5's (layer_types, rope_parameters {full_attention:{...}, sliding_attention:{...}}),
 * and the VLM form that nests the text fields under "text_config" (with the image token ids and
 * "vision_config" beside it). Missing fields take Gemma3TextConfig's (Gemma3Config's,
 * SiglipVisionConfig's) defaults, since Hub config.json files are minimal. Errors name the file and
 * the field. */
#ifndef UNISPARSE_GEMMA3_CONFIG_H
#define UNISPARSE_GEMMA3_CONFIG_H

#include "siglip.h"
#include "unisparse/attention.h"

#include <stdint.h>

#define US_GEMMA3_MAX_LAYERS 256

typedef struct {
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int num_layers;
    int num_heads;
    int num_kv_heads;
    int head_dim;
    float query_pre_attn_scalar;
    int sliding_window;
    int max_position_embeddings;
    float rms_norm_eps;
    float rope_global_base;   /* rope_theta of full_attention layers */
    float rope_local_base;    /* rope_local_base_freq / sliding_attention rope_theta */
    float rope_global_factor; /* linear factor on global layers, 1 = none */
    int tie_word_embeddings;
    int bos_id, eos_id, pad_id;
    /* The image prompt (top level of a Gemma3ForConditionalGeneration config.json; Gemma3Config's
     * defaults otherwise): each image is "\n\n" boi, mm_tokens_per_image x image_token_id, eoi "\n\n". */
    int image_token_id;      /* image_token_index: <image_soft_token>, 262144 (may lie outside vocab_size) */
    int boi_id, eoi_id;      /* boi_token_index 255999, eoi_token_index 256000 */
    int mm_tokens_per_image; /* 256 */
    uint8_t is_global[US_GEMMA3_MAX_LAYERS]; /* per layer: 1 full attention, 0 sliding */
} us_gemma3_config;

/* Gemma3TextConfig's defaults (the 2B-sized text model transformers uses when a field is missing). */
void us_gemma3_config_default(us_gemma3_config *c);

/* Parses a config.json text; path is only used in messages. */
us_status us_gemma3_config_parse(const char *json, const char *path, us_gemma3_config *c, us_error *err);

/* Reads and parses the file at path. */
us_status us_gemma3_config_load(const char *path, us_gemma3_config *c, us_error *err);

/* Range and consistency checks; messages name the path and the field. */
us_status us_gemma3_config_validate(const us_gemma3_config *c, const char *path, us_error *err);

/* The "vision_config" object of a config.json text: *present = 0 when there is none (a text-only
 * model; vc untouched), else 1 with vc filled, missing fields taking SiglipVisionConfig's defaults.
 * Errors name path and the field. */
us_status us_gemma3_vision_config_parse(const char *json, const char *path, int *present, us_siglip_config *vc,
                                        us_error *err);
/* Reads the file at path and parses its vision_config. */
us_status us_gemma3_vision_config_load(const char *path, int *present, us_siglip_config *vc, us_error *err);

/* The whole of a small JSON file (config.json, model.safetensors.index.json), NUL-terminated,
 * malloc'd into *out; at most 64 MiB, so that a directory or a huge file under that name never
 * becomes a huge allocation. Errors name the file. */
us_status us_gemma3_read_json_text(const char *path, char **out, us_error *err);

#endif
