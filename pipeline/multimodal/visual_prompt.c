/* visual_prompt.c: preprocessing + the image encoder per image, and placeholder expansion. */
#include "visual_prompt.h"

#include "chat_template.h"
#include "gemma3_vision.h"
#include "image_preprocess.h"
#include "image_prompt.h"

#include <stdlib.h>
#include <string.h>

struct us_visual_prompt {
    const us_llm *llm;
    us_gemma3_image_encoder *enc;
    int size;           /* S: the tower's input side */
    int64_t per_image;  /* mm_tokens_per_image */
    int64_t hidden;
    float *pixels;      /* (3, S, S) */
    float *rows;        /* (cap_images * per_image, hidden) */
    int n_images, cap_images;
};

us_status us_visual_prompt_create(const us_llm *llm, int threads, us_visual_prompt **out, us_error *err)
{
    *out = NULL;
    if (!llm->w->vision)
        return us_error_set(err, US_ERR_UNSUPPORTED,
                            "%s has no vision tower: images need a Gemma 3 checkpoint with one (4B, 12B, 27B, a "
                            "Gemma3ForConditionalGeneration Hugging Face directory)",
                            llm->path);
    us_visual_prompt *vp = calloc(1, sizeof *vp);
    if (!vp) return us_error_set(err, US_ERR_NOMEM, "no memory");
    vp->llm = llm;
    vp->size = llm->w->vision->tower.cfg.image_size;
    vp->per_image = llm->w->cfg.mm_tokens_per_image;
    vp->hidden = llm->w->cfg.hidden_size;
    us_status s = us_gemma3_image_encoder_create(llm->w, threads, &vp->enc, err);
    if (!s && !(vp->pixels = malloc((size_t)3 * vp->size * vp->size * sizeof *vp->pixels)))
        s = us_error_set(err, US_ERR_NOMEM, "no memory for a %dx%d image", vp->size, vp->size);
    if (s) {
        us_visual_prompt_free(&vp);
        return s;
    }
    *out = vp;
    return US_OK;
}

void us_visual_prompt_free(us_visual_prompt **pvp)
{
    if (!pvp || !*pvp) return;
    us_gemma3_image_encoder_free(&(*pvp)->enc);
    free((*pvp)->pixels), free((*pvp)->rows);
    free(*pvp);
    *pvp = NULL;
}

us_status us_visual_prompt_add_image(us_visual_prompt *vp, const uint8_t *rgb, int w, int h, us_error *err)
{
    if (vp->n_images == vp->cap_images) {
        const int cap = vp->cap_images ? vp->cap_images * 2 : 8;
        float *r = realloc(vp->rows, (size_t)cap * vp->per_image * vp->hidden * sizeof *r);
        if (!r) return us_error_set(err, US_ERR_NOMEM, "no memory for %d images' embeddings", cap);
        vp->rows = r, vp->cap_images = cap;
    }
    us_status s = us_image_preprocess(rgb, w, h, vp->size, vp->pixels, err);
    if (!s) s = us_gemma3_encode_image(vp->enc, vp->pixels, vp->rows + vp->n_images * vp->per_image * vp->hidden, err);
    if (!s) vp->n_images++;
    return s;
}

int us_visual_prompt_n_images(const us_visual_prompt *vp) { return vp->n_images; }

const float *us_visual_prompt_rows(const us_visual_prompt *vp, int64_t *n_rows)
{
    *n_rows = vp->n_images * vp->per_image;
    return vp->rows;
}

void us_visual_prompt_clear(us_visual_prompt *vp) { vp->n_images = 0; }

us_status us_visual_prompt_encode(const us_visual_prompt *vp, const char *text, us_prompt_style style,
                                  int32_t **ids, int64_t *n, us_error *err)
{
    *ids = NULL, *n = 0;
    char *rendered = NULL, *expanded = NULL;
    int markers = 0;
    us_status s = US_OK;
    if (style == US_PROMPT_CHAT) { /* the template first (it trims the text), then the images, as transformers */
        const us_chat_turn turn = {"user", text};
        if ((s = us_gemma3_chat_render(&turn, 1, true, true, &rendered, err))) return s;
        text = rendered, style = US_PROMPT_RAW;
    }
    s = us_gemma3_expand_images(text, (int)vp->per_image, &expanded, &markers, err);
    free(rendered);
    if (s) return s;
    if (markers != vp->n_images) {
        free(expanded);
        return us_error_set(err, US_ERR_INVALID, "the prompt places %d images, %d were given", markers, vp->n_images);
    }
    s = us_llm_encode(vp->llm, expanded, style, ids, n, err);
    free(expanded);
    return s;
}
