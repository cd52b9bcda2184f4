/* gemma3_gguf.h: a llama.cpp GGUF checkpoint of Gemma 3 -> the runtime's config, weights and tokenizer.
 *
 *   us_gemma3_weights *w = NULL;  us_tokenizer *tok = NULL;
 *   if (us_gemma3_weights_load_gguf("models/gemma-3-270m-q4_k_m.gguf", &w, &err) ||
 *       us_gemma3_tokenizer_from_gguf(us_gemma3_weights_gguf(w), &tok, &err)) ...
 *
 * Config keys (gemma3.*): context_length, embedding_length, block_count, feed_forward_length,
 * attention.head_count, attention.head_count_kv, attention.key_length, attention.sliding_window,
 * attention.layer_norm_rms_epsilon, rope.freq_base (global layers); optional rope.scaling.type /
 * rope.scaling.factor (linear, global layers), attention.query_pre_attn_scalar (else head_dim),
 * attention.sliding_window_pattern (else layer l is global iff (l + 1) % 6 == 0). Sliding layers'
 * RoPE base is 10000 (no GGUF key holds it). vocab_size is token_embd's row count. */
#ifndef UNISPARSE_GEMMA3_GGUF_H
#define UNISPARSE_GEMMA3_GGUF_H

#include "gemma3_weights.h"
#include "gguf.h"
#include "tokenizer.h"

/* The text-decoder config of g (general.architecture must be gemma3). */
us_status us_gemma3_config_from_gguf(const us_gguf *g, us_gemma3_config *c, us_error *err);

/* SentencePiece from tokenizer.ggml.tokens / scores / token_type (Gemma 3 settings, special ids from
 * tokenizer.ggml.*_token_id); <image_soft_token> is added as id 262144 (or the vocab size) when the
 * vocabulary lacks it. */
us_status us_gemma3_tokenizer_from_gguf(const us_gguf *g, us_tokenizer **out, us_error *err);

#endif
