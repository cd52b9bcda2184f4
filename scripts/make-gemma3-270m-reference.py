#!/usr/bin/env python3
"""Golden reference for the real Gemma 3 270M Q4_K_M checkpoint (tests/test_gemma3_270m.c).

transformers loads the same GGUF (it dequantises every tensor to f32 and subtracts the +1 that
llama.cpp folded into the RMSNorm weights), so both sides run the identical Q4_K_M weights in fp32.
It records transformers' token ids (no BOS) for a few multilingual texts with whitespace runs,
digits, emoji and special tokens, and, for a fixed prompt: the prompt's token ids (transformers' tokenizer built from the GGUF
vocabulary, BOS added), the next-token logits' top-20 ids and values, and the greedy continuation of
32 tokens (argmax every step, no stop tokens), into assets/gemma3-270m/reference.json.

    python3 scripts/make-gemma3-270m-reference.py [models/gemma-3-270m-q4_k_m.gguf]
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "The quick brown fox jumps over the lazy dog. In one sentence, the history of the Roman Empire is"
# Texts for the tokenizer comparison: several scripts, whitespace runs, tabs and newlines, digits,
# emoji and special tokens written in the text.
TOKENIZER_TEXTS = [
    "Hello, world! 12345 + 67.89 = ?",
    "  leading and   internal   spaces\tand\ttabs\n\nnew lines  ",
    "Grüße aus München — naïve café, ½ + ¼ ≠ ¾",
    "Привет, мир! Καλημέρα κόσμε. 你好，世界。こんにちは世界。안녕하세요",
    "مرحبا بالعالم — שלום עולם — नमस्ते दुनिया",
    "emoji 👩🏽‍💻 🚀🔥 and symbols ∑∫√∞ ©®™",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "code: for (int i = 0; i < 10; i++) { x[i] = i * 2; }    // done",
]
TOPK = 20
GREEDY = 32


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
    d, name = os.path.split(os.path.abspath(path))
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    tokenizer_cases = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in TOKENIZER_TEXTS]
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    ids = tok(PROMPT, add_special_tokens=True)["input_ids"]
    if ids[0] != 2:
        ids = [2] + ids
    with torch.no_grad():
        x = torch.tensor([ids])
        out = model(x, use_cache=True)
        logits = out.logits[0, -1].float()
        top = torch.topk(logits, TOPK)
        past = out.past_key_values
        greedy = []
        nxt = int(torch.argmax(logits))
        for _ in range(GREEDY):
            greedy.append(nxt)
            out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(torch.argmax(out.logits[0, -1]))
    ref = {
        "model": name,
        "prompt": PROMPT,
        "add_bos": True,
        "ids": ids,
        "top_ids": [int(i) for i in top.indices],
        "top_logits": [float(v) for v in top.values],
        "greedy": greedy,
        "greedy_text": tok.decode(greedy),
        "tokenizer_cases": tokenizer_cases,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
    }
    dst = os.path.join(ROOT, "assets", "gemma3-270m", "reference.json")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(f"{dst}: {len(ids)} prompt ids, top-1 {ref['top_ids'][0]}, greedy: {ref['greedy_text']!r}")


if __name__ == "__main__":
    main()
