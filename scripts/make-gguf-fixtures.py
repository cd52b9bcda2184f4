#!/usr/bin/env python3
"""make-gguf-fixtures.py: reference fixtures for the GGUF reader, written by the `gguf` package.

Reads models/gemma-3-270m-q4_k_m.gguf (scripts/fetch-gemma3-270m.sh fetches it) with
gguf.GGUFReader and writes into assets/gguf/:

  gemma3-270m-rows.safetensors  for each tensor type in the file, one tensor of that type (the
                                first in file order): rows 0, 1 and the last row, dequantised to
                                F32 by gguf.quants.dequantize, stored as "<tensor name>" [3, ne0]
  gemma3-270m.json              header facts, a few metadata values, every tensor's name, shape
                                (ggml order, ne0 first), type and offset, and which rows were kept

Usage: pip install gguf numpy; python3 scripts/make-gguf-fixtures.py [model.gguf]
"""
import json
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
OUT = os.path.join(ROOT, "assets", "gguf")

META_KEYS = [
    "general.architecture",
    "gemma3.context_length",
    "gemma3.block_count",
    "gemma3.embedding_length",
    "gemma3.feed_forward_length",
    "gemma3.attention.head_count",
    "gemma3.attention.head_count_kv",
    "gemma3.attention.key_length",
    "gemma3.attention.value_length",
    "gemma3.attention.sliding_window",
    "gemma3.attention.layer_norm_rms_epsilon",
    "gemma3.rope.freq_base",
    "tokenizer.ggml.model",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_bos_token",
    "general.file_type",
]


def scalar(field):
    """The value of a scalar field, as Python str / int / float / bool."""
    t = field.types[0]
    part = field.parts[field.data[0]]
    if t.name == "STRING":
        return bytes(part).decode("utf-8")
    v = part[0].item()
    return bool(v) if t.name == "BOOL" else v


def write_safetensors(path, tensors, meta):
    """A safetensors file (8-byte LE header length, JSON header, data) of F32 arrays."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors:
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else MODEL
    r = GGUFReader(model)
    os.makedirs(OUT, exist_ok=True)

    info = {
        "file": os.path.basename(model),
        "version": scalar(r.fields["GGUF.version"]),
        "tensor_count": len(r.tensors),
        "kv_count": scalar(r.fields["GGUF.kv_count"]),
        "alignment": r.alignment,
        "data_offset": r.data_offset,
        "metadata": {k: scalar(r.fields[k]) for k in META_KEYS if k in r.fields},
    }
    tok = r.fields["tokenizer.ggml.tokens"]
    info["token_count"] = len(tok.data)
    info["tokens_first"] = [bytes(tok.parts[i]).decode("utf-8") for i in tok.data[:8]]
    info["tensors"] = [
        {"name": t.name, "shape": [int(d) for d in t.shape], "type": t.tensor_type.name,
         "offset": int(t.data_offset - r.data_offset)}
        for t in r.tensors
    ]

    rows_out, fixtures = [], []
    seen = set()
    for t in r.tensors:
        if t.tensor_type in seen:
            continue
        seen.add(t.tensor_type)
        ne0 = int(t.shape[0])
        n_rows = int(np.prod([int(d) for d in t.shape[1:]])) if len(t.shape) > 1 else 1
        keep = sorted({0, min(1, n_rows - 1), n_rows - 1})
        # t.data is [rows, bytes per row] for quantised types, [rows, ne0] for float ones.
        raw = t.data.reshape(n_rows, -1)
        rows = np.stack([dequantize(raw[i:i + 1], GGMLQuantizationType(t.tensor_type)).reshape(ne0)
                         for i in keep]).astype(np.float32)
        rows_out.append((t.name, rows))
        fixtures.append({"name": t.name, "type": t.tensor_type.name, "rows": keep, "ne0": ne0})
    info["row_fixtures"] = fixtures

    write_safetensors(os.path.join(OUT, "gemma3-270m-rows.safetensors"), rows_out,
                      {"source": os.path.basename(model), "writer": "gguf.quants.dequantize"})
    with open(os.path.join(OUT, "gemma3-270m.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    for name in ("gemma3-270m-rows.safetensors", "gemma3-270m.json"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
