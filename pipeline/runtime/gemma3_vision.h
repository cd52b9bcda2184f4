/* gemma3_vision.h: Gemma 3's image path: the SigLIP tower and the multimodal projector of a
 * Gemma3ForConditionalGeneration checkpoint, and the image encoder that turns one preprocessed image
 * into the text decoder's image soft-token embeddings.
 *
 *   us_gemma3_weights *w = NULL;  us_gemma3_image_encoder *enc = NULL;  us_error err;
 *   us_gemma3_weights_load(dir, &w, &err);           // w->vision is NULL for a text-only checkpoint
 *   us_gemma3_image_encoder_create(w, 0, &enc, &err);
 *   int S = w->vision->tower.cfg.image_size;         // 896 on the Hub checkpoints
 *   float *emb = malloc((size_t)w->cfg.mm_tokens_per_image * w->cfg.hidden_size * sizeof *emb);
 *   us_gemma3_encode_image(enc, pixels, emb, &err);  // pixels (3, S, S) CHW in [-1, 1]
 *   // then the ids "\n\n" boi, mm_tokens_per_image x image_token_id, eoi "\n\n" and
 *   // us_gemma3_forward_embeds (gemma3_model.h) with emb as the image rows.
 *
 * Tensor names: vision_tower.vision_model.*, model.vision_tower.vision_model.*, vision_tower.* or
 * model.vision_tower.* for the tower (embeddings.{patch_embedding,position_embedding},
 * encoder.layers.N.{layer_norm1,layer_norm2,self_attn.{q,k,v,out}_proj,mlp.fc1,mlp.fc2}, post_layernorm)
 * and multi_modal_projector.* or model.multi_modal_projector.* ({mm_soft_emb_norm.weight,
 * mm_input_projection_weight}). Matrices stay views in their stored dtype; biases and norm vectors are
 * copied as f32 (the projector's RMSNorm weight as 1 + w). Every shape is checked against config.json. */
#ifndef UNISPARSE_GEMMA3_VISION_H
#define UNISPARSE_GEMMA3_VISION_H

#include "gemma3_weights.h"
#include "mm_projector.h"
#include "siglip.h"
#include "unisparse/attention.h"

typedef struct us_gemma3_vision {
    us_siglip_weights tower;   /* tower.cfg: the vision_config */
    us_mm_projector projector; /* (P, Cv) -> (mm_tokens_per_image, text hidden) */
    /* private */
    us_siglip_layer *layers;   /* tower.layers */
    float *vectors;            /* every bias and norm vector, f32, one allocation */
} us_gemma3_vision;

/* For the loader (us_gemma3_weights_load): binds the vision tensors of w's files, for the vision config vc
 * and w->cfg (text hidden size, mm_tokens_per_image), into a new w->vision. Errors name dir or the file
 * and the tensor, or config.json and the field. */
us_status us_gemma3_vision_load(us_gemma3_weights *w, const char *dir, const us_siglip_config *vc, us_error *err);
void us_gemma3_vision_free(us_gemma3_vision **v);

/* The tower and projector with their scratch, for one image at a time. */
typedef struct us_gemma3_image_encoder us_gemma3_image_encoder;

/* w must have vision (w->vision not NULL) and outlive the encoder; threads: 0 = OpenMP's default. */
us_status us_gemma3_image_encoder_create(const us_gemma3_weights *w, int threads, us_gemma3_image_encoder **out,
                                         us_error *err);
void us_gemma3_image_encoder_free(us_gemma3_image_encoder **e);

/* pixels (3, S, S) CHW, normalized to [-1, 1] (S = image_size) -> embeds (mm_tokens_per_image, text
 * hidden_size), the rows that replace the image's soft tokens in the decoder, unscaled. Allocates nothing
 * of its own. */
us_status us_gemma3_encode_image(us_gemma3_image_encoder *e, const float *pixels, float *embeds, us_error *err);

#endif
