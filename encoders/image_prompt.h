/* image_prompt.h: Gemma 3's image placeholders in a prompt, expanded as transformers' Gemma3Processor
 * expands them.
 *
 *   char *text = NULL;  int n_images = 0;  us_error err;
 *   us_gemma3_expand_images("<start_of_image>What is this?", 256, &text, &n_images, &err);
 *   // "\n\n<start_of_image>" 256 x "<image_soft_token>" "<end_of_image>\n\nWhat is this?"
 *   us_tokenizer_add_special(tok, "<image_soft_token>", 262144, &err);  // once: tokenizer.model lacks it
 *   us_tokenizer_encode(tok, text, strlen(text), ...);                  // specials by id, text by SentencePiece
 *   free(text);
 *
 * Each "<start_of_image>" in the text (as a rendered chat turn holds it, where the image goes) is one
 * image, in order: it becomes "\n\n<start_of_image>" + tokens_per_image x "<image_soft_token>" +
 * "<end_of_image>\n\n" (the processor's full_image_sequence; the "\n\n" are encoded with the text
 * around them, as transformers does). The n-th image's embedding rows then fill the n-th run of
 * image soft tokens (us_gemma3_forward_embeds). */
#ifndef UNISPARSE_IMAGE_PROMPT_H
#define UNISPARSE_IMAGE_PROMPT_H

#include "unisparse/attention.h"

#ifdef __cplusplus
extern "C" {
#endif

#define US_GEMMA3_BOI_TEXT "<start_of_image>"
#define US_GEMMA3_EOI_TEXT "<end_of_image>"
#define US_GEMMA3_IMAGE_TOKEN_TEXT "<image_soft_token>"

/* Expands every "<start_of_image>" of text into a new string *out (the caller frees it); *n_images
 * (may be NULL) receives their count. tokens_per_image: mm_tokens_per_image, >= 1. */
us_status us_gemma3_expand_images(const char *text, int tokens_per_image, char **out, int *n_images, us_error *err);

#ifdef __cplusplus
}
#endif

#endif
