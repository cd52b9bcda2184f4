/* fuzz_hf_dir.c: a Hugging Face checkpoint directory (us_gemma3_weights_load) whose
 * model.safetensors.index.json is the input: the index itself (cJSON, "weight_map", the shard names),
 * the shards it names, and the tensor lookups, shape checks and row reads across them.
 *
 * Input: the index is the bytes up to the first NUL (JSON has no raw NUL); the bytes after it, when
 * there is one, become the shard fuzz.safetensors, so that the fuzzer can also hand the loader a
 * shard of its own (misaligned, wrongly shaped or duplicated tensors). Beside them, written once per
 * process: the config.json of a tiny text model (C 8, 1 layer, 2 heads of 8, 1 KV head, I 16,
 * vocabulary 8, tied) and a valid two-shard checkpoint of it (model-00001-of-00002.safetensors: the
 * embedding and the final norm; model-00002-of-00002.safetensors: the layer, in F32, F16 and BF16),
 * so that an index naming both loads and a fuzzed one gets past the shard list. */
#include "fuzz_entry.h"

#include "gemma3_weights.h"
#include "safetensors.h"

#include <stdio.h>
#include <string.h>

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define FUZZ_SHARD "fuzz.safetensors"

static const char k_config[] =
    "{\"architectures\": [\"Gemma3ForCausalLM\"], \"model_type\": \"gemma3_text\", \"vocab_size\": 8,\n"
    " \"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,\n"
    " \"num_key_value_heads\": 1, \"head_dim\": 8, \"sliding_window\": 4, \"max_position_embeddings\": 32,\n"
    " \"query_pre_attn_scalar\": 8, \"tie_word_embeddings\": true}\n";

/* Values for every tensor: small finite numbers in each dtype (128 is the largest tensor). */
static float g_f32[128];
static uint16_t g_f16[128], g_bf16[128];

static us_st_tensor tensor(const char *name, const char *dtype, int64_t rows, int64_t cols)
{
    us_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "model.%s", name);
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", dtype);
    t.ndim = cols ? 2 : 1;
    t.shape[0] = rows;
    t.shape[1] = cols;
    const int64_t n = rows * (cols ? cols : 1);
    const int f32 = !strcmp(dtype, "F32");
    t.elem_size = f32 ? 4 : 2;
    t.data = f32 ? (const void *)g_f32 : !strcmp(dtype, "F16") ? (const void *)g_f16 : (const void *)g_bf16;
    t.nbytes = (size_t)n * t.elem_size;
    return t;
}

/* config.json and the two valid shards, once per process; 0 on success. */
static int setup(void)
{
    static int state; /* 0 not yet, 1 ready, -1 failed */
    if (state) return state > 0 ? 0 : -1;
    state = -1;
    for (int i = 0; i < 128; i++) {
        g_f32[i] = (float)(i % 7 - 3) / 16.0f;
        g_f16[i] = 0x3000;  /* 0.125 */
        g_bf16[i] = 0x3E00; /* 0.125 */
    }
    const char *dir = us_fuzz_dir();
    if (!dir || us_fuzz_dir_write("config.json", (const uint8_t *)k_config, sizeof k_config - 1)) return -1;
    const us_st_tensor s1[] = {tensor("embed_tokens.weight", "F32", 8, 8), tensor("norm.weight", "BF16", 8, 0)};
    const us_st_tensor s2[] = {
        tensor("layers.0.self_attn.q_proj.weight", "F16", 16, 8),
        tensor("layers.0.self_attn.k_proj.weight", "F32", 8, 8),
        tensor("layers.0.self_attn.v_proj.weight", "BF16", 8, 8),
        tensor("layers.0.self_attn.o_proj.weight", "F32", 8, 16),
        tensor("layers.0.mlp.gate_proj.weight", "F16", 16, 8),
        tensor("layers.0.mlp.up_proj.weight", "F32", 16, 8),
        tensor("layers.0.mlp.down_proj.weight", "BF16", 8, 16),
        tensor("layers.0.input_layernorm.weight", "F32", 8, 0),
        tensor("layers.0.post_attention_layernorm.weight", "F16", 8, 0),
        tensor("layers.0.pre_feedforward_layernorm.weight", "BF16", 8, 0),
        tensor("layers.0.post_feedforward_layernorm.weight", "F32", 8, 0),
        tensor("layers.0.self_attn.q_norm.weight", "F32", 8, 0),
        tensor("layers.0.self_attn.k_norm.weight", "F16", 8, 0),
    };
    char path[1024];
    us_error err;
    snprintf(path, sizeof path, "%s/" SHARD1, dir);
    if (us_safetensors_write(path, s1, (int)(sizeof s1 / sizeof *s1), NULL, 0, &err)) return -1;
    snprintf(path, sizeof path, "%s/" SHARD2, dir);
    if (us_safetensors_write(path, s2, (int)(sizeof s2 / sizeof *s2), NULL, 0, &err)) return -1;
    state = 1;
    return 0;
}

/* The first and the last row of m, as the model reads them. */
static void read_rows(const us_gemma3_mat *m)
{
    float row[64];
    if (m->rows < 1 || m->cols < 1 || m->cols > 64) return;
    us_gemma3_mat_row(m, 0, row);
    us_gemma3_mat_row(m, m->rows - 1, row);
}

int us_fuzz_hf_dir(const uint8_t *data, size_t size)
{
    if (setup()) return US_ERR_IO;
    const uint8_t *nul = memchr(data, 0, size);
    const size_t index_len = nul ? (size_t)(nul - data) : size;
    if (us_fuzz_dir_write("model.safetensors.index.json", data, index_len)) return US_ERR_IO;
    if (nul ? us_fuzz_dir_write(FUZZ_SHARD, nul + 1, size - index_len - 1) : us_fuzz_dir_remove(FUZZ_SHARD))
        return US_ERR_IO;
    us_gemma3_weights *w = NULL;
    us_error err;
    us_status s = us_gemma3_weights_load(us_fuzz_dir(), &w, &err);
    if (s) return s;
    read_rows(&w->embed);
    read_rows(&w->lm_head);
    for (int l = 0; l < w->cfg.num_layers; l++) {
        const us_gemma3_layer *y = &w->layers[l];
        const us_gemma3_mat *m[] = {&y->q, &y->k, &y->v, &y->o, &y->gate, &y->up, &y->down};
        for (size_t i = 0; i < sizeof m / sizeof *m; i++) read_rows(m[i]);
    }
    us_gemma3_weights_free(&w);
    return US_OK;
}
