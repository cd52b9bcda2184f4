#!/usr/bin/env python3
"""make-gemma3-vlm-fixture.py: the golden fixture for tests/test_gemma3_vlm.c.

Builds a tiny random-weight Gemma3ForConditionalGeneration with transformers (fp32, fixed seed) and
saves it with save_pretrained into assets/gemma3-tiny-vlm/ (config.json + model.safetensors), with
reference.safetensors holding:

  pixels, pixels2   F32 [3, S, S]   two fixed input images, CHW, in [-1, 1] (preprocessed already)
  vision            F32 [P, Cv]     the SigLIP tower's last_hidden_state (post_layernorm) for pixels
  projected         F32 [N, C]      the projector's output (N = mm_tokens_per_image) for pixels
  projected2        F32 [N, C]      the same for pixels2
  ids1, logits1     I64 [T1], F32 [T1, V]   text + one image + text
  ids2, logits2     I64 [T2], F32 [T2, V]   text + image + text + image + text

Each image is expanded as Gemma3Processor does: "\\n\\n<start_of_image>" + N x <image_soft_token> +
"<end_of_image>\\n\\n" (ids: 108, boi, N x image_token_id, eoi, 108; text ids are random, as in the text
fixture). The logits come from model(input_ids, pixel_values, token_type_ids) with token_type_ids = 1 on
the soft tokens exactly as the processor builds them: without token_type_ids transformers applies no
bidirectional image mask, and the script asserts that the mask changes the image positions' logits.

The text config is the text fixture's (GQA, head_dim * heads != hidden, a sliding window of 8 shorter
than one image's 16 soft tokens, so a sliding layer's image query sees the whole image ahead but only 8
keys behind; a linear RoPE factor on the one global layer). The vision config is general on purpose:
image 48, patch 6 (8 x 8 patches), hidden 32, 2 heads of 16, 2 layers, intermediate 80, layer_norm_eps
1e-5 (used by the projector's RMSNorm too), pooled 2 x 2 to 16 tokens. The image token id is the real
262144, outside the tiny vocabulary (transformers then embeds id 0 and overwrites the row).

transformers 5 saves the tensors as language_model.model.*, vision_tower.* (no vision_model.) and
multi_modal_projector.*; the test also rewrites them into the model.language_model.*,
model.vision_tower.vision_model.*, model.multi_modal_projector.* layout and loads that.

    python3 -m pip install torch transformers safetensors
    python3 scripts/make-gemma3-vlm-fixture.py [--out assets/gemma3-tiny-vlm]
"""
import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

NL2 = 108  # "\n\n" in Gemma 3's tokenizer


def expand_image(cfg):
    n = cfg.mm_tokens_per_image
    return [NL2, cfg.boi_token_index] + [cfg.image_token_index] * n + [cfg.eoi_token_index, NL2]


def text_ids(gen, n, vocab, avoid):
    out = []
    while len(out) < n:
        t = int(torch.randint(3, vocab, (1,), generator=gen))
        if t not in avoid:
            out.append(t)
    return out


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "assets", "gemma3-tiny-vlm"))
    args = ap.parse_args()

    torch.manual_seed(4321)
    text = Gemma3TextConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        query_pre_attn_scalar=24,
        sliding_window=8,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=128,
        rope_theta=10000.0,
        rope_local_base_freq=100.0,
        rope_scaling={"rope_type": "linear", "factor": 2.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
    )
    vision = SiglipVisionConfig(
        image_size=48,
        patch_size=6,
        hidden_size=32,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=2,
        layer_norm_eps=1e-5,
        vision_use_head=False,
    )
    cfg = Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=16,
        boi_token_index=500,
        eoi_token_index=501,
        image_token_index=262144,
        tie_word_embeddings=True,
    )
    for c in (cfg, cfg.text_config, cfg.vision_config):
        c._attn_implementation = "eager"
    model = Gemma3ForConditionalGeneration(cfg).to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") and "vision_tower" not in name:
                p.copy_(torch.randn_like(p) * 0.5)  # Gemma RMSNorm: (1 + w) with w visibly non-zero
            elif "layer_norm" in name or "layernorm" in name:  # SigLIP LayerNorm: w and b as stored
                p.copy_((1.0 if name.endswith("weight") else 0.0) + torch.randn_like(p) * 0.3)
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.1)
            elif "position_embedding" in name:
                p.copy_(torch.randn_like(p) * 0.3)
            elif "patch_embedding" in name:
                p.copy_(torch.randn_like(p) * 0.08)
            elif "mm_input_projection_weight" in name:
                p.copy_(torch.randn_like(p) * 0.15)
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) * 0.08)
            else:
                raise SystemExit(f"unhandled parameter {name} {tuple(p.shape)}")

    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    gen_cfg = os.path.join(args.out, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)  # not used by the runtime; keep the fixture minimal

    gen = torch.Generator().manual_seed(77)
    S = vision.image_size
    # smooth structure plus noise, clipped to the preprocessed range [-1, 1]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, S), torch.linspace(-1, 1, S), indexing="ij")
    base = torch.stack([torch.sin(3 * xx + 1), torch.cos(2 * yy - xx), xx * yy])
    pixels = (0.7 * base + 0.3 * torch.rand((3, S, S), generator=gen) * 2 - 0.3).clamp(-1, 1).contiguous()
    pixels2 = (torch.rand((3, S, S), generator=gen) * 2 - 1).contiguous()

    with torch.no_grad():
        vis = model.model.vision_tower(pixel_values=pixels[None]).last_hidden_state  # (1, P, Cv)
        proj = model.model.multi_modal_projector(vis)  # (1, N, C)
        proj2 = model.model.multi_modal_projector(model.model.vision_tower(pixel_values=pixels2[None]).last_hidden_state)
        feats = model.model.get_image_features(pixels[None], return_dict=True).pooler_output
    assert torch.equal(feats, proj), "get_image_features differs from tower + projector"

    avoid = {NL2, cfg.boi_token_index, cfg.eoi_token_index}
    img = expand_image(cfg)
    ids1 = [text.bos_token_id] + text_ids(gen, 5, 500, avoid) + img + text_ids(gen, 6, 500, avoid)
    ids2 = ([text.bos_token_id] + text_ids(gen, 3, 500, avoid) + img + text_ids(gen, 3, 500, avoid) + img
            + text_ids(gen, 4, 500, avoid))

    def run(ids, pix, with_types=True):
        t = torch.tensor(ids, dtype=torch.long)[None]
        tt = (t == cfg.image_token_index).long() if with_types else None
        with torch.no_grad():
            out = model(input_ids=t, pixel_values=pix, token_type_ids=tt, use_cache=False)
        return out.logits[0].to(torch.float32).contiguous()

    logits1 = run(ids1, pixels[None])
    logits2 = run(ids2, torch.stack([pixels, pixels2]))
    # The bidirectional image mask must be in effect: without token_type_ids the image positions change,
    # the text before the first image does not.
    causal1 = run(ids1, pixels[None], with_types=False)
    first = ids1.index(cfg.image_token_index)
    d_before = (causal1[:first] - logits1[:first]).abs().max().item()
    d_image = (causal1[first:] - logits1[first:]).abs().max().item()
    print(f"bidirectional vs causal image mask: before the image {d_before:.3g}, from the image on {d_image:.3g}")
    assert d_before == 0.0 and d_image > 1e-2, "token_type_ids do not switch the bidirectional image mask on"
    # ... and the sliding layers must see an image wider than their window
    assert cfg.mm_tokens_per_image > text.sliding_window

    meta = {"transformers": __import__("transformers").__version__, "torch": torch.__version__}
    save_file({
        "pixels": pixels, "pixels2": pixels2,
        "vision": vis[0].contiguous(), "projected": proj[0].contiguous(), "projected2": proj2[0].contiguous(),
        "ids1": torch.tensor(ids1, dtype=torch.int64), "logits1": logits1,
        "ids2": torch.tensor(ids2, dtype=torch.int64), "logits2": logits2,
    }, os.path.join(args.out, "reference.safetensors"), metadata=meta)
    total = 0
    for f in sorted(os.listdir(args.out)):
        size = os.path.getsize(os.path.join(args.out, f))
        total += size
        print(f, size)
    print("total", total, "bytes; T1", len(ids1), "T2", len(ids2))
    print("argmax 1:", logits1.argmax(-1).tolist())


if __name__ == "__main__":
    main()
