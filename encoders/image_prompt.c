/* image_prompt.c: "<start_of_image>" -> Gemma3Processor's full image sequence (see image_prompt.h). */
#include "image_prompt.h"

#include <stdlib.h>
#include <string.h>

us_status us_gemma3_expand_images(const char *text, int tokens_per_image, char **out, int *n_images, us_error *err)
{
    *out = NULL;
    if (n_images) *n_images = 0;
    if (!text) return us_error_set(err, US_ERR_INVALID, "prompt text is NULL");
    if (tokens_per_image < 1 || tokens_per_image > (1 << 20))
        return us_error_set(err, US_ERR_INVALID, "tokens_per_image = %d outside [1, 2^20]", tokens_per_image);
    const size_t lb = strlen(US_GEMMA3_BOI_TEXT), le = strlen(US_GEMMA3_EOI_TEXT);
    const size_t li = strlen(US_GEMMA3_IMAGE_TOKEN_TEXT);
    size_t count = 0;
    for (const char *p = strstr(text, US_GEMMA3_BOI_TEXT); p; p = strstr(p + lb, US_GEMMA3_BOI_TEXT)) count++;
    /* each placeholder: "\n\n" boi, tokens x image token, eoi "\n\n" in place of boi */
    const size_t grow = 2 + le + 2 + (size_t)tokens_per_image * li;
    char *s = malloc(strlen(text) + count * grow + 1), *w = s;
    if (!s) return us_error_set(err, US_ERR_NOMEM, "no memory to expand %zu images", count);
    for (const char *p = text, *q; ; p = q + lb) {
        q = strstr(p, US_GEMMA3_BOI_TEXT);
        const size_t n = q ? (size_t)(q - p) : strlen(p);
        memcpy(w, p, n), w += n;
        if (!q) break;
        memcpy(w, "\n\n" US_GEMMA3_BOI_TEXT, 2 + lb), w += 2 + lb;
        for (int i = 0; i < tokens_per_image; i++) memcpy(w, US_GEMMA3_IMAGE_TOKEN_TEXT, li), w += li;
        memcpy(w, US_GEMMA3_EOI_TEXT "\n\n", le + 2), w += le + 2;
    }
    *w = '\0';
    *out = s;
    if (n_images) *n_images = (int)count;
    return US_OK;
}
