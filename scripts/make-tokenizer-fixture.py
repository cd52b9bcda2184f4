#!/usr/bin/env python3
"""make-tokenizer-fixture.py: the tiny SentencePiece model and golden ids behind tests/test_tokenizer.c.

Why: the C tokenizer must give exactly the ids the reference (Python) SentencePiece gives, both when it
loads a tokenizer.model and when it builds the ModelProto itself from (pieces, scores, types) arrays, as
it will from a GGUF file. This script trains a small BPE model with Gemma 3's settings (byte fallback,
identity normalizer, no dummy prefix, whitespace kept, digits split, special ids pad 0 / eos 1 / bos 2 /
unk 3, chat markers as user-defined pieces) and writes, under assets/tokenizer/:

  tiny.model   the serialized ModelProto
  tiny.json    {"settings", "pieces": [[piece, score, type], ...], "cases": [...]} where each case holds
               a text, the ids the reference gives (special pieces split out of the text and inserted by
               id, the spans between them encoded by SentencePiece, no BOS) and the decoded text.

Usage: python3 -m pip install sentencepiece protobuf && python3 scripts/make-tokenizer-fixture.py
The output is deterministic for a given sentencepiece version (recorded in tiny.json).
"""
import io
import json
import os
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "assets", "tokenizer")

USER_DEFINED = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"]
CONTROL = ["<mask>"]

CORPUS = """\
The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces.
Attention is all you need; sparse attention makes long prefill fast.
Gemma is a family of open models. The model answers questions about images and text.
user: What is the capital of France? model: The capital of France is Paris.
Numbers like 2024, 1999 and 3.14159 are split into single digits.
    Indented code:  for (int i = 0; i < n; i++) { sum += x[i]; }
Grüße aus München! Ça va très bien, merci. ¿Dónde está la biblioteca?
Привет, как дела? Это маленький тест.
你好，世界。这是一个测试。
こんにちは、世界。これはテストです。
"""

CASES = [
    "Hello world",
    "The  quick\tbrown   fox\n\njumps over 12345 lazy dogs.",
    "  leading and trailing spaces  ",
    "Grüße, Привет, 你好世界, こんにちは, مرحبا بالعالم, 🙂👍🏽!",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "text<mask>more<start_of_image><end_of_image>end",
    "<end_of_turn><end_of_turn>",
    "unknown-ish: \u00a0\u2028 zero\u200bwidth",
    "",
]


def train():
    os.makedirs(OUT, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.splitlines() * 4),
        model_writer=model,
        model_type="bpe",
        vocab_size=420,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=USER_DEFINED,
        control_symbols=CONTROL,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def reference_encode(sp, specials, text):
    """Specials (CONTROL and USER_DEFINED pieces) split out, leftmost first, longest on a tie."""
    ids, i, start = [], 0, 0
    while i < len(text):
        hit = max((s for s in specials if text.startswith(s, i)), key=len, default=None)
        if hit is None:
            i += 1
            continue
        if start < i:
            ids += sp.encode(text[start:i])
        ids.append(sp.piece_to_id(hit))
        i += len(hit)
        start = i
    if start < len(text):
        ids += sp.encode(text[start:])
    return ids


def main():
    blob = train()
    sp = spm.SentencePieceProcessor(model_proto=blob)
    proto = pb.ModelProto()
    proto.ParseFromString(blob)
    pieces = [[p.piece, p.score, int(p.type)] for p in proto.pieces]
    specials = [p.piece for p in proto.pieces
                if p.type in (pb.ModelProto.SentencePiece.CONTROL, pb.ModelProto.SentencePiece.USER_DEFINED)]
    cases = []
    for text in CASES:
        ids = reference_encode(sp, specials, text)
        if "<mask>" not in text:  # SentencePiece itself matches USER_DEFINED pieces: must agree
            assert ids == sp.encode(text), (text, ids, sp.encode(text))
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids)})
    ts, ns = proto.trainer_spec, proto.normalizer_spec
    settings = {
        "sentencepiece_version": spm.__version__,
        "model_type": int(ts.model_type), "byte_fallback": ts.byte_fallback,
        "unk_id": ts.unk_id, "bos_id": ts.bos_id, "eos_id": ts.eos_id, "pad_id": ts.pad_id,
        "split_digits": ts.split_digits,
        "allow_whitespace_only_pieces": ts.allow_whitespace_only_pieces,
        "normalizer": ns.name, "add_dummy_prefix": ns.add_dummy_prefix,
        "remove_extra_whitespaces": ns.remove_extra_whitespaces,
        "escape_whitespaces": ns.escape_whitespaces,
        "precompiled_charsmap_bytes": len(ns.precompiled_charsmap),
    }
    with open(os.path.join(OUT, "tiny.model"), "wb") as f:
        f.write(blob)
    with open(os.path.join(OUT, "tiny.json"), "w", encoding="utf-8") as f:
        line = lambda x: json.dumps(x, ensure_ascii=False)  # one piece or case a line: small, diffable
        f.write('{"settings": %s,\n"pieces": [\n%s],\n"cases": [\n%s]}\n' % (
            line(settings), ",\n".join(map(line, pieces)), ",\n".join(map(line, cases))))
    print(f"make-tokenizer-fixture: {len(pieces)} pieces, {len(blob)} bytes model, {len(cases)} cases -> {OUT}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
