/* visual_prompt.h: images (RGB8 pictures or video frames) -> the soft-token rows and the token ids of
 * a Gemma 3 prompt that shows them, as transformers' Gemma3Processor builds it.
 *
 *   us_visual_prompt *vp = NULL;
 *   us_visual_prompt_create(llm, 0, &vp, &err);            // llm from a vision checkpoint
 *   us_visual_prompt_add_image(vp, rgb, w, h, &err);       // preprocess (resize, normalize) + encode
 *   us_visual_prompt_encode(vp, "<start_of_image>What is shown?", US_PROMPT_CHAT, &ids, &n, &err);
 *   int64_t rows;  const float *emb = us_visual_prompt_rows(vp, &rows);
 *   us_generate_embeds(model, llm, ids, n, emb, rows, &gp, NULL, &res, &err);
 *
 * Each "<start_of_image>" in the text is the place of the next image added, in order; it is
 * expanded into "\n\n<start_of_image>" + mm_tokens_per_image soft tokens + "<end_of_image>\n\n". */
#ifndef UNISPARSE_VISUAL_PROMPT_H
#define UNISPARSE_VISUAL_PROMPT_H

#include "llm.h"

#include <stdint.h>

typedef struct us_visual_prompt us_visual_prompt;

/* The checkpoint must have a vision tower (llm->w->vision); the error says which ones do. */
us_status us_visual_prompt_create(const us_llm *llm, int threads, us_visual_prompt **out, us_error *err);
void us_visual_prompt_free(us_visual_prompt **vp);

/* Appends one image: rgb [h, w, 3] -> resized to the tower's input, normalized, encoded into
 * mm_tokens_per_image rows. */
us_status us_visual_prompt_add_image(us_visual_prompt *vp, const uint8_t *rgb, int w, int h, us_error *err);
int us_visual_prompt_n_images(const us_visual_prompt *vp);
/* The rows of every image added, (n_images * mm_tokens_per_image, hidden); valid until the next add. */
const float *us_visual_prompt_rows(const us_visual_prompt *vp, int64_t *n_rows);
/* Forgets the images (keeps the buffers). */
void us_visual_prompt_clear(us_visual_prompt *vp);

/* text with one "<start_of_image>" per image added -> ids (new array, free()), in the given style.
 * The marker count must equal the images added. US_PROMPT_CHAT renders the chat template around the
 * text before expanding the images, as apply_chat_template + Gemma3Processor do (so "\n\n" of an
 * image at either end of the text stays; the template's trim sees only the text given). */
us_status us_visual_prompt_encode(const us_visual_prompt *vp, const char *text, us_prompt_style style,
                                  int32_t **ids, int64_t *n, us_error *err);

#endif
