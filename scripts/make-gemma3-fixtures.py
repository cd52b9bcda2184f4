#!/usr/bin/env python3
"""make-gemma3-fixtures.py: the golden fixture for tests/test_gemma3.c.

Builds a tiny random-weight Gemma3ForCausalLM with transformers (fp32, fixed seed), saves it with
save_pretrained into assets/gemma3-tiny/ (config.json + model.safetensors), runs it on a fixed id
sequence long enough to cross the sliding window, and writes every position's logits to
assets/gemma3-tiny/reference.safetensors (ids I64 [T], logits F32 [T, vocab]).

The config exercises what is easy to get wrong: head_dim * heads != hidden, GQA (2 query heads on
1 kv head), query_pre_attn_scalar != head_dim, a sliding window (8) shorter than the prompt (40),
one global layer out of three given by layer_types, a linear RoPE factor on the global layer only,
and norm weights far from zero so (1 + w) matters.

    python3 -m pip install torch transformers safetensors
    python3 scripts/make-gemma3-fixtures.py [--out assets/gemma3-tiny]
"""
import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma3ForCausalLM, Gemma3TextConfig


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "assets", "gemma3-tiny"))
    args = ap.parse_args()

    torch.manual_seed(1234)
    cfg = Gemma3TextConfig(
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
        max_position_embeddings=64,
        rope_theta=10000.0,
        rope_local_base_freq=100.0,
        rope_scaling={"rope_type": "linear", "factor": 2.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
        torch_dtype="float32",
    )
    cfg._attn_implementation = "eager"
    model = Gemma3ForCausalLM(cfg).to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.randn_like(p) * 0.5)   # (1 + w) with w visibly non-zero
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) * 0.08)

    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    gen_cfg = os.path.join(args.out, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)  # not used by the runtime; keep the fixture minimal

    gen = torch.Generator().manual_seed(99)
    ids = torch.randint(3, cfg.vocab_size, (40,), generator=gen)
    ids[0] = cfg.bos_token_id
    with torch.no_grad():
        out = model(input_ids=ids[None, :], use_cache=False)
    logits = out.logits[0].to(torch.float32).contiguous()
    # The fixture must exercise the window: the same weights with a window >= the prompt differ.
    cfg_wide = Gemma3TextConfig.from_dict(cfg.to_dict())
    cfg_wide.sliding_window = 64
    cfg_wide._attn_implementation = "eager"
    wide = Gemma3ForCausalLM(cfg_wide).to(torch.float32).eval()
    wide.load_state_dict(model.state_dict())
    with torch.no_grad():
        diff = (wide(input_ids=ids[None, :], use_cache=False).logits[0] - logits).abs().max().item()
    print("max |logits(window 64) - logits(window 8)|:", diff)
    assert diff > 1e-2, "the sliding window does not change the logits"
    save_file({"ids": ids.to(torch.int64).contiguous(), "logits": logits},
              os.path.join(args.out, "reference.safetensors"),
              metadata={"transformers": __import__("transformers").__version__, "torch": torch.__version__})
    for f in sorted(os.listdir(args.out)):
        print(f, os.path.getsize(os.path.join(args.out, f)))
    print("argmax:", logits.argmax(-1).tolist())


if __name__ == "__main__":
    main()
