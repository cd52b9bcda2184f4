/* llm.h: a loaded Gemma 3 checkpoint ready to generate: weights, tokenizer and the ids that matter.
 *
 *   us_llm *llm = NULL;  us_error err;
 *   if (us_llm_load("models/gemma-3-270m-q4_k_m.gguf", &llm, &err)) { puts(err.msg); ... }
 *   int32_t *ids = NULL;  int64_t n = 0;
 *   us_llm_encode(llm, "Hello", US_PROMPT_BOS, &ids, &n, &err);     // or US_PROMPT_CHAT
 *   ...  free(ids);  us_llm_free(&llm);
 *
 * The path is a GGUF file (tokenizer built from its vocabulary) or a Hugging Face directory with
 * config.json, model.safetensors[.index.json] and tokenizer.model. */
#ifndef UNISPARSE_LLM_H
#define UNISPARSE_LLM_H

#include "gemma3_weights.h"
#include "tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    us_gemma3_weights *w;
    us_tokenizer *tok;
    int32_t eos_id, eot_id; /* generation stops at either; eot = <end_of_turn> (-1 if absent) */
    bool instruction_tuned; /* the checkpoint carries a chat template (GGUF tokenizer.chat_template,
                               or a Hugging Face tokenizer_config.json / chat_template.jinja with
                               one): prompts go through it; a base model gets plain completions */
    char path[1024];
} us_llm;

typedef enum {
    US_PROMPT_RAW = 0,  /* the text as is, no BOS */
    US_PROMPT_BOS = 1,  /* BOS + the text */
    US_PROMPT_CHAT = 2, /* the Gemma 3 chat template, one user turn, ready for the model's answer */
} us_prompt_style;

us_status us_llm_load(const char *path, us_llm **out, us_error *err);
void us_llm_free(us_llm **llm);

/* Encodes text (special-token strings become their ids) in the given style into a new array *ids
 * (free()) of *n tokens. */
us_status us_llm_encode(const us_llm *llm, const char *text, us_prompt_style style, int32_t **ids, int64_t *n,
                        us_error *err);

/* Decodes ids to a new NUL-terminated UTF-8 string (free()). */
us_status us_llm_decode(const us_llm *llm, const int32_t *ids, int64_t n, char **text, us_error *err);

#endif
