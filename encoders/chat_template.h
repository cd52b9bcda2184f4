/* chat_template.h: Gemma 3's chat template, rendered in C.
 *
 * The prompt string that Gemma 3's tokenizer_config.json chat template produces, for text turns:
 *
 *   <bos><start_of_turn>user\n{system}\n\n{text}<end_of_turn>\n<start_of_turn>model\n{text}<end_of_turn>\n
 *   ... <start_of_turn>model\n            (the generation prompt)
 *
 * Roles: an optional leading "system" turn, whose text is prefixed to the first user turn followed
 * by "\n\n"; then "user" and "model" ("assistant" is written as "model") alternating, user first, as
 * the template demands. Each text is trimmed of leading and trailing whitespace (the template's
 * `| trim`). Images go in a text as "<start_of_image>" (the caller expands them, see the spec).
 * Encode the result with us_tokenizer_encode: "<bos>" becomes the BOS id there, so do not add BOS
 * again when add_bos is set.
 */
#ifndef UNISPARSE_CHAT_TEMPLATE_H
#define UNISPARSE_CHAT_TEMPLATE_H

#include "unisparse/attention.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *role; /* "system", "user", "model" or "assistant" */
    const char *text; /* UTF-8, NUL-terminated */
} us_chat_turn;

/* Renders turns into a malloc'd string (the caller frees it). */
us_status us_gemma3_chat_render(const us_chat_turn *turns, int n, bool add_bos, bool add_generation_prompt,
                                char **out, us_error *err);

#ifdef __cplusplus
}
#endif

#endif
