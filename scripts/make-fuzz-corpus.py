#!/usr/bin/env python3
"""make-fuzz-corpus.py: seed corpora for the fuzz targets (fuzz/, FUZZING.md) in fuzz/corpus/<target>/.

Usage: scripts/make-fuzz-corpus.py [OUT_DIR]     (default: fuzz/corpus)

Seeds are (re)written under fixed names; other files there (what libFuzzer added in earlier runs) are
kept, so the corpus grows from run to run. Delete the folder to start over.

Each target gets small valid files of its format, made here byte by byte or taken from the committed
fixtures under assets/ (configs, images, the tokenizer vocabulary), tiny videos made with the ffmpeg
CLI (skipped, saying so, when it is missing), and for each valid seed a few damaged copies: cut in
half, cut a few bytes short, and bytes overwritten at fixed pseudo-random places. Everything is
deterministic (one fixed seed). The dictionaries live beside the targets in fuzz/dict/.
Needs only the Python standard library (and ffmpeg for the video seeds).
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
RNG = random.Random(20261122)


def damaged(data, n_flips=3):
    """Truncated and corrupted variants of a valid seed."""
    out = []
    if len(data) > 16:
        out.append(("half", data[: len(data) // 2]))
        out.append(("short", data[:-3]))
    if data:
        b = bytearray(data)
        for _ in range(n_flips):
            i = RNG.randrange(len(b))
            b[i] = RNG.choice([0x00, 0xFF, 0x7F, 0x80, b[i] ^ 0x01])
        out.append(("flip", bytes(b)))
    return out


class Corpus:
    def __init__(self, root):
        self.root = root
        self.counts = {}

    def add(self, target, name, data, variants=True):
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.counts[target] = self.counts.get(target, 0) + 1
        if variants:
            for tag, v in damaged(data):
                self.add(target, f"{name}.{tag}", v, variants=False)


# ---- safetensors ----------------------------------------------------------------------------------

ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
            "BOOL": 1, "F8_E4M3": 1, "U16": 2, "U32": 4, "U64": 8}


def safetensors(tensors, meta=None, pad_to=8):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file (the writer's layout)."""
    header, off, blobs = {}, 0, []
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((-len(js)) % pad_to)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def f32s(values):
    return struct.pack(f"<{len(values)}f", *values)


def f16s(values):
    return struct.pack(f"<{len(values)}e", *values)


def bf16s(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def rand_values(n):
    return [RNG.uniform(-2, 2) for _ in range(n)]


def qkv(hq, hkv, n, d, pack, dtype, meta):
    q = pack(rand_values(hq * n * d))
    k = pack(rand_values(hkv * n * d))
    v = pack(rand_values(hkv * n * d))
    return safetensors([("q", dtype, (hq, n, d), q), ("k", dtype, (hkv, n, d), k), ("v", dtype, (hkv, n, d), v)],
                       meta)


def safetensors_seeds(c):
    c.add("safetensors", "mixed-dtypes.safetensors", safetensors(
        [(f"t_{dt.lower()}", dt, (2, 3), bytes(RNG.randrange(256) for _ in range(6 * sz)))
         for dt, sz in ST_SIZES.items()], {"format": "pt", "note": "x"}))
    c.add("safetensors", "empty-and-scalar.safetensors", safetensors(
        [("scalar", "F32", (), f32s([1.5])), ("empty", "F16", (0, 7), b""), ("vec", "BF16", (4,), bf16s([1, 2, 3, 4]))]))
    c.add("safetensors", "only-metadata.safetensors", safetensors([], {"a": "b"}))
    c.add("safetensors", "unpadded.safetensors", safetensors([("x", "F32", (3,), f32s([1, 2, 3]))], pad_to=1))
    for name in ("gemma3-tiny", "gemma3-tiny-vlm"):
        # the real header of a checkpoint fixture, its data cut to a few bytes: names, shapes, offsets
        with open(os.path.join(ASSETS, name, "model.safetensors"), "rb") as f:
            raw = f.read()
        hlen = struct.unpack("<Q", raw[:8])[0]
        c.add("safetensors", f"{name}-header-only.safetensors", raw[: 8 + hlen + 64], variants=False)
    for target in ("safetensors", "qkv_file"):
        c.add(target, "qkv-causal-f32.safetensors", qkv(2, 1, 8, 16, f32s, "F32", {"mask": "causal"}))
        c.add(target, "qkv-bidir-f16.safetensors", qkv(2, 2, 4, 8, f16s, "F16", {"mask": "bidirectional"}))
        c.add(target, "qkv-spans-bf16.safetensors", qkv(4, 2, 8, 8, bf16s, "BF16",
                                                      {"mask": "spans", "spans": "[[0,4],[5,8]]",
                                                       "q_offset": "0", "scale": "0.25"}))
    c.add("qkv_file", "qkv-nometa.safetensors", qkv(1, 1, 2, 8, f32s, "F32", None))
    c.add("qkv_file", "qkv-unaligned.safetensors", safetensors([("q", "F32", (1, 3, 8), f32s(rand_values(24))), ("k", "F32", (1, 3, 8), f32s(rand_values(24))),
                       ("v", "F32", (1, 3, 8), f32s(rand_values(24)))], {"mask": "causal"}, pad_to=1))
    c.add("qkv_file", "qkv-offset.safetensors", safetensors(
        [("q", "F32", (1, 2, 8), f32s(rand_values(16))), ("k", "F32", (1, 6, 8), f32s(rand_values(48))),
         ("v", "F32", (1, 6, 8), f32s(rand_values(48)))], {"mask": "causal", "q_offset": "4"}))


# ---- GGUF -----------------------------------------------------------------------------------------

GG_U8, GG_I8, GG_U16, GG_I16, GG_U32, GG_I32, GG_F32, GG_BOOL, GG_STR, GG_ARR, GG_U64, GG_I64, GG_F64 = range(13)
GG_FMT = {GG_U8: "<B", GG_I8: "<b", GG_U16: "<H", GG_I16: "<h", GG_U32: "<I", GG_I32: "<i", GG_F32: "<f",
          GG_BOOL: "<?", GG_U64: "<Q", GG_I64: "<q", GG_F64: "<d"}
# ggml type: (block values, block bytes)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q5_0": (6, 32, 22), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144),
        "Q6_K": (14, 256, 210), "BF16": (30, 1, 2), "Q4_0": (2, 32, 18)}


def gg_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gg_value(t, v):
    if t == GG_STR:
        return gg_str(v)
    return struct.pack(GG_FMT[t], v)


def gguf(kvs, tensors, alignment=32, version=3):
    """kvs: [(key, type, value)] with type GG_ARR values as (elem_type, [values]);
    tensors: [(name, ggml type name, ne list, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gg_str(key) + struct.pack("<I", t)
        if t == GG_ARR:
            et, vals = v
            out += struct.pack("<IQ", et, len(vals)) + b"".join(gg_value(et, x) for x in vals)
        else:
            out += gg_value(t, v)
    offsets, off = [], 0
    for name, tname, ne, data in tensors:
        offsets.append(off)
        off += len(data)
        off += (-off) % alignment
    for (name, tname, ne, data), o in zip(tensors, offsets):
        out += gg_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        out += struct.pack("<IQ", GGML[tname][0], o)
    out += b"\0" * ((-len(out)) % alignment)
    for (name, tname, ne, data), o in zip(tensors, offsets):
        out += data
        out += b"\0" * ((-len(data)) % alignment)
    return out


def ggml_data(tname, ne):
    _, block, nbytes = GGML[tname]
    n = 1
    for x in ne:
        n *= x
    if tname == "F32":
        return f32s(rand_values(n))
    if tname == "F16":
        return f16s(rand_values(n))
    if tname == "BF16":
        return bf16s(rand_values(n))
    blocks = n // block
    out = bytearray()
    for _ in range(blocks):
        b = bytearray(RNG.randrange(256) for _ in range(nbytes))
        # a small finite f16 scale where the layout keeps one (first two bytes; Q6_K: last two)
        at = nbytes - 2 if tname == "Q6_K" else 0
        b[at:at + 2] = struct.pack("<e", RNG.uniform(-0.1, 0.1))
        if tname == "Q4_K":
            b[2:4] = struct.pack("<e", RNG.uniform(0, 0.1))
        out += b
    return bytes(out)


def tiny_vocab():
    with open(os.path.join(ASSETS, "tokenizer", "tiny.json")) as f:
        return json.load(f)


def tokenizer_kvs(vocab, n=None):
    pieces = vocab["pieces"][:n] if n else vocab["pieces"]
    s = vocab["settings"]
    return [
        ("tokenizer.ggml.model", GG_STR, "llama"),
        ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, [p[0] for p in pieces])),
        ("tokenizer.ggml.scores", GG_ARR, (GG_F32, [float(p[1]) for p in pieces])),
        # llama.cpp's converter marks <unk> CONTROL (3); the loader turns it back into UNKNOWN
        ("tokenizer.ggml.token_type", GG_ARR, (GG_I32, [3 if p[2] == 2 else p[2] for p in pieces])),
        ("tokenizer.ggml.bos_token_id", GG_U32, s["bos_id"]),
        ("tokenizer.ggml.eos_token_id", GG_U32, s["eos_id"]),
        ("tokenizer.ggml.unknown_token_id", GG_U32, s["unk_id"]),
        ("tokenizer.ggml.padding_token_id", GG_U32, s["pad_id"]),
    ]


def gemma3_gguf(vocab, wtype="F32"):
    """A whole tiny Gemma 3 checkpoint: C 32 (256 for K-quants), 2 heads of 16, 1 KV head, 2 layers,
    a 24-row embedding; matrices whose rows are 32 long are Q8_0 when the others are K-quants."""
    kquant = wtype in ("Q4_K", "Q6_K")
    C = 256 if kquant else 32
    d, H, KV, I, L, V = 16, 2, 1, 32, 2, 24
    narrow = "Q8_0" if kquant else wtype
    kvs = [
        ("general.architecture", GG_STR, "gemma3"),
        ("general.alignment", GG_U32, 32),
        ("gemma3.context_length", GG_U32, 128),
        ("gemma3.embedding_length", GG_U32, C),
        ("gemma3.block_count", GG_U32, L),
        ("gemma3.feed_forward_length", GG_U32, I),
        ("gemma3.attention.head_count", GG_U32, H),
        ("gemma3.attention.head_count_kv", GG_U32, KV),
        ("gemma3.attention.key_length", GG_U32, d),
        ("gemma3.attention.value_length", GG_U32, d),
        ("gemma3.attention.sliding_window", GG_U32, 16),
        ("gemma3.rope.freq_base", GG_F32, 1000000.0),
        ("gemma3.attention.layer_norm_rms_epsilon", GG_F32, 1e-6),
        ("gemma3.rope.scaling.type", GG_STR, "linear"),
        ("gemma3.rope.scaling.factor", GG_F32, 8.0),
        ("gemma3.attention.sliding_window_pattern", GG_ARR, (GG_BOOL, [True, False])),
    ] + tokenizer_kvs(vocab, V)

    def mat(name, rows, cols, t=wtype):
        return (name, t, [cols, rows], ggml_data(t, [cols, rows]))

    def norm(name, n):
        return (name, "F32", [n], f32s([1.0 + RNG.uniform(-0.1, 0.1) for _ in range(n)]))

    tensors = [mat("token_embd.weight", V, C), norm("output_norm.weight", C)]
    for l in range(L):
        b = f"blk.{l}."
        tensors += [mat(b + "attn_q.weight", H * d, C), mat(b + "attn_k.weight", KV * d, C),
                    mat(b + "attn_v.weight", KV * d, C), mat(b + "attn_output.weight", C, H * d, narrow),
                    mat(b + "ffn_gate.weight", I, C), mat(b + "ffn_up.weight", I, C),
                    mat(b + "ffn_down.weight", C, I, narrow),
                    norm(b + "attn_norm.weight", C), norm(b + "post_attention_norm.weight", C),
                    norm(b + "ffn_norm.weight", C), norm(b + "post_ffw_norm.weight", C),
                    norm(b + "attn_q_norm.weight", d), norm(b + "attn_k_norm.weight", d)]
    return gguf(kvs, tensors)


def gguf_seeds(c, vocab):
    every_type = [
        ("k.u8", GG_U8, 200), ("k.i8", GG_I8, -5), ("k.u16", GG_U16, 60000), ("k.i16", GG_I16, -300),
        ("k.u32", GG_U32, 4000000000), ("k.i32", GG_I32, -70000), ("k.f32", GG_F32, 0.5), ("k.bool", GG_BOOL, True),
        ("k.str", GG_STR, "hello"), ("k.u64", GG_U64, 2 ** 63 + 5), ("k.i64", GG_I64, -(2 ** 40)),
        ("k.f64", GG_F64, 1e300), ("k.arr.i32", GG_ARR, (GG_I32, [1, -2, 3])),
        ("k.arr.str", GG_ARR, (GG_STR, ["a", "", "b\0c"])), ("k.arr.f64", GG_ARR, (GG_F64, [1.5, -2.5])),
        ("k.arr.empty", GG_ARR, (GG_U8, [])), ("general.alignment", GG_U32, 64),
    ]
    tensors = [("t.f32", "F32", [4, 3], ggml_data("F32", [4, 3])), ("t.f16", "F16", [8], ggml_data("F16", [8])),
               ("t.bf16", "BF16", [2, 2, 2], ggml_data("BF16", [2, 2, 2])),
               ("t.q8_0", "Q8_0", [32, 2], ggml_data("Q8_0", [32, 2])),
               ("t.q5_0", "Q5_0", [64], ggml_data("Q5_0", [64])),
               ("t.q4_k", "Q4_K", [256, 1], ggml_data("Q4_K", [256, 1])),
               ("t.q6_k", "Q6_K", [256], ggml_data("Q6_K", [256])),
               ("t.q4_0", "Q4_0", [32], ggml_data("Q4_0", [32])),
               ("t.empty", "F32", [0, 5], b""), ("t.4d", "F16", [2, 1, 2, 2], ggml_data("F16", [2, 1, 2, 2]))]
    c.add("gguf", "every-type-v3.gguf", gguf(every_type, tensors, alignment=64))
    c.add("gguf", "every-type-v2.gguf", gguf(every_type, tensors[:3], alignment=64, version=2))
    c.add("gguf", "metadata-only.gguf", gguf([("general.architecture", GG_STR, "gemma3")], []))
    c.add("gguf", "header-only.gguf", gguf([], []))
    c.add("gguf", "big-endian.gguf", b"GGUF" + struct.pack(">IQQ", 3, 0, 0))
    c.add("gguf", "gemma3-tiny-f16.gguf", gemma3_gguf(vocab, "F16"))
    c.add("gguf", "gemma3-tiny-q4k.gguf", gemma3_gguf(vocab, "Q4_K"))
    c.add("gguf", "gemma3-tiny-q8.gguf", gemma3_gguf(vocab, "Q8_0"))
    c.add("sp_from_gguf", "tokenizer-only.gguf", gguf([("general.architecture", GG_STR, "gemma3")] +
                                                      tokenizer_kvs(vocab), []))


def sp_structured(pieces, ids=(2, 1, 3, 0), flags=0x0F):
    """The structured form fuzz_sp_from_gguf.c decodes: flags, 4 ids, then type|score|piece lines."""
    out = bytes([flags]) + bytes(i & 0xFF for i in ids)
    lines = []
    for text, score, t in pieces:
        sc = max(-128, min(127, int(round(score * 4))))
        lines.append(bytes([t & 0xFF, sc & 0xFF]) + text.encode())
    return out + b"\n".join(lines)


def sp_seeds(c, vocab):
    pieces = vocab["pieces"]
    c.add("sp_from_gguf", "vocab-tiny.bin", sp_structured([(p, s / 40.0, t) for p, s, t in pieces]))
    c.add("sp_from_gguf", "vocab-first-64.bin", sp_structured([(p, s / 40.0, t) for p, s, t in pieces[:64]]))
    # byte fallback (Gemma's setting) needs all 256 byte pieces: without them SentencePiece refuses
    c.add("sp_from_gguf", "vocab-minimal.bin", sp_structured(
        [("<pad>", 0, 3), ("<eos>", 0, 3), ("<bos>", 0, 3), ("<unk>", 0, 2)] +
        [(f"<0x{i:02X}>", 0, 6) for i in range(256)] +
        [("a", -1, 1), ("b", -2, 1), ("ab", -3, 1), ("<start_of_turn>", 0, 4), ("\u2581", -4, 1)]))
    c.add("sp_from_gguf", "vocab-no-ids.bin", sp_structured([("<unk>", 0, 2), ("x", -1, 1)], ids=(0, 0, 0, 0), flags=0))


# ---- tokenizer.model (SentencePiece ModelProto) ---------------------------------------------------

def pb_varint(v):
    v &= (1 << 64) - 1  # negative ints are ten bytes of two's complement, as protobuf writes them
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_int(field, v):
    return pb_varint(field << 3) + pb_varint(v)


def pb_float(field, f):
    return pb_varint(field << 3 | 5) + struct.pack("<f", f)


def pb_bytes(field, data):
    data = data.encode() if isinstance(data, str) else data
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def sp_model(pieces, model_type=1, byte_fallback=False, ids=(0, 1, 2, -1), normalizer="identity",
             charsmap=None, self_test=None, extra=b""):
    """A ModelProto: pieces (1), trainer_spec (2), normalizer_spec (3), self_test_data (4); the fields
    sp_model_proto.c writes, plus a precompiled charsmap and self-test samples when given."""
    out = b"".join(pb_bytes(1, pb_bytes(1, p) + pb_float(2, sc) + pb_int(3, t)) for p, sc, t in pieces)
    unk, bos, eos, pad = ids
    ts = (pb_int(3, model_type) + pb_int(4, len(pieces)) + pb_int(35, int(byte_fallback)) + pb_int(40, unk) +
          pb_int(41, bos) + pb_int(42, eos) + pb_int(43, pad) + pb_bytes(44, " \u2047 "))
    ns = pb_bytes(1, normalizer) + pb_int(3, 1) + pb_int(4, 1) + pb_int(5, 1)
    if charsmap is not None:
        ns += pb_bytes(2, charsmap)
    out += pb_bytes(2, ts) + pb_bytes(3, ns)
    if self_test:
        out += pb_bytes(4, b"".join(pb_bytes(1, pb_bytes(1, i) + pb_bytes(2, e)) for i, e in self_test))
    return out + extra


def darts_charsmap(rules):
    """A precompiled charsmap as SentencePiece reads it: u32 trie size | a Darts-clone double array of
    the rules' sources | the replacements, NUL-terminated. Every trie node gets a block of 256 units of
    its own (as Darts-clone allocates them), its children at base ^ byte and its value at base ^ 0."""
    strings, value_of = b"", {}
    for src, dst in rules:
        value_of[src.encode()] = len(strings)
        strings += dst.encode() + b"\0"
    trie = {}  # prefix -> {byte: prefix + byte}
    for src in value_of:
        for i in range(len(src)):
            trie.setdefault(src[:i], {})[src[i]] = src[: i + 1]
    nodes = sorted(set(trie) | set(value_of), key=lambda k: (len(k), k))
    base = {k: 256 * (i + 1) for i, k in enumerate(nodes)}
    units = [0] * (256 * (len(nodes) + 1))
    units[0] = base[b""] << 10  # the root: only its offset (0 ^ base)
    for k in nodes:
        b = base[k]
        if k in value_of:
            units[b] = value_of[k] | 1 << 31
        for byte, child in trie.get(k, {}).items():
            pos = b ^ byte
            units[pos] = byte | (pos ^ base[child]) << 10 | (1 << 8 if child in value_of else 0)
    blob = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(blob)) + blob + strings


def tokenizer_model_seeds(c, vocab):
    with open(os.path.join(ASSETS, "tokenizer", "tiny.model"), "rb") as f:
        c.add("tokenizer_model", "tiny.model", f.read())
    base = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3)]
    words = [("\u2581a", -1, 1), ("\u2581b", -2, 1), ("a", -3, 1), ("b", -4, 1), ("\u2581", -5, 1), ("ab", -6, 1)]
    byte_pieces = [(f"<0x{i:02X}>", 0, 6) for i in range(256)]
    c.add("tokenizer_model", "unigram-bytes.model", sp_model(
        base + [("<start_of_turn>", 0, 3), ("<mask>", 0, 4)] + byte_pieces + words, byte_fallback=True))
    c.add("tokenizer_model", "bpe.model", sp_model(base + words, model_type=2))
    c.add("tokenizer_model", "word.model", sp_model(base + words, model_type=3))
    c.add("tokenizer_model", "char.model", sp_model(base + [("a", -1, 1), ("b", -1, 1), ("\u2581", -1, 1)],
                                                    model_type=4))
    c.add("tokenizer_model", "unk-only.model", sp_model([("<unk>", 0, 2)], ids=(0, -1, -1, -1)))
    c.add("tokenizer_model", "self-test.model",
          sp_model(base + words, self_test=[("ab", "\u2581a b"), ("a b", "\u2581a \u2581b")]))
    # a precompiled charsmap: u32 trie size, then the trie (Darts units) and the normalized strings;
    # these are made up (the format is SentencePiece's own) so that its checks are reached.
    c.add("tokenizer_model", "charsmap-empty-trie.model", sp_model(base + words, normalizer="nmt_nfkc",
                                                                   charsmap=struct.pack("<I", 0) + b"a\0"))
    c.add("tokenizer_model", "charsmap-one-unit.model", sp_model(base + words, normalizer="nfkc",
                                                                 charsmap=struct.pack("<II", 4, 0x400) + b"x\0"))
    c.add("tokenizer_model", "charsmap-valid.model", sp_model(
        base + words, normalizer="nmt_nfkc",
        charsmap=darts_charsmap([("A", "a"), ("AB", "b"), ("\uff21", "a"), ("\u3000", " "), ("x", "")])))
    c.add("tokenizer_model", "vocab-from-json.model", sp_model(
        [(p, s, t) for p, s, t in vocab["pieces"]], model_type=vocab["settings"]["model_type"], byte_fallback=True,
        ids=(vocab["settings"]["unk_id"], vocab["settings"]["bos_id"], vocab["settings"]["eos_id"],
             vocab["settings"]["pad_id"])))
    c.add("tokenizer_model", "unknown-fields.model",
          sp_model(base + words, extra=pb_int(99, 7) + pb_bytes(100, b"xyz") + pb_varint(101 << 3 | 1) + b"\0" * 8))


# ---- Hugging Face directory: model.safetensors.index.json (+ a shard of the input's own) -----------

HF_SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
HF_LAYER = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
            "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
            "input_layernorm.weight", "post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
            "post_feedforward_layernorm.weight", "self_attn.q_norm.weight", "self_attn.k_norm.weight"]
# the tiny model that fuzz_hf_dir.c writes beside the index: C 8, 2 heads of 8, 1 KV head, I 16, vocab 8
HF_SHAPES = {"self_attn.q_proj.weight": (16, 8), "self_attn.k_proj.weight": (8, 8),
             "self_attn.v_proj.weight": (8, 8), "self_attn.o_proj.weight": (8, 16),
             "mlp.gate_proj.weight": (16, 8), "mlp.up_proj.weight": (16, 8), "mlp.down_proj.weight": (8, 16)}


def hf_index(weight_map, total=4096):
    return json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2).encode()


def hf_tiny_shard(dtype="F32", pack=f32s, align_pad=0):
    """Every tensor of the tiny model in one safetensors file; align_pad bytes before the data make
    every tensor start at an odd offset (the format does not require alignment)."""
    tensors = [("model.embed_tokens.weight", (8, 8)), ("model.norm.weight", (8,))]
    tensors += [(f"model.layers.0.{n}", HF_SHAPES.get(n, (8,))) for n in HF_LAYER]
    header, off, blobs = {}, align_pad, [b"\0" * align_pad]
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        data = pack([0.125] * n)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((-len(js)) % 8)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def hf_dir_seeds(c):
    layer = {f"model.layers.0.{n}": HF_SHARDS[1] for n in HF_LAYER}
    both = {"model.embed_tokens.weight": HF_SHARDS[0], "model.norm.weight": HF_SHARDS[0], **layer}
    c.add("hf_dir", "two-shards.json", hf_index(both))
    c.add("hf_dir", "first-shard-only.json", hf_index({"model.embed_tokens.weight": HF_SHARDS[0]}))
    c.add("hf_dir", "no-metadata.json", json.dumps({"weight_map": both}).encode())
    c.add("hf_dir", "empty-map.json", hf_index({}))
    c.add("hf_dir", "map-not-object.json", b'{"weight_map": ["a.safetensors"]}')
    c.add("hf_dir", "value-not-string.json", b'{"weight_map": {"model.norm.weight": 3}}')
    c.add("hf_dir", "path-in-name.json", hf_index({"model.norm.weight": "../" + HF_SHARDS[0]}))
    c.add("hf_dir", "dot-dot.json", hf_index({"model.norm.weight": ".."}))
    c.add("hf_dir", "names-config.json", hf_index({"x": "config.json", "y": "model.safetensors.index.json"}))
    c.add("hf_dir", "missing-shard.json", hf_index({**both, "lm_head.weight": "model-00003-of-00003.safetensors"}))
    own = {k: "fuzz.safetensors" for k in both}
    for name, shard in (("own-shard-f32", hf_tiny_shard()), ("own-shard-f16", hf_tiny_shard("F16", f16s)),
                        ("own-shard-bf16-odd-offsets", hf_tiny_shard("BF16", bf16s, align_pad=1)),
                        ("own-shard-f16-odd-offsets", hf_tiny_shard("F16", f16s, align_pad=1))):
        c.add("hf_dir", f"{name}.bin", hf_index(own) + b"\0" + shard)
    # the input's shard listed first, so that its tensors win over the valid shards' of the same name
    c.add("hf_dir", "own-shard-first.bin", hf_index({"a": "fuzz.safetensors", **both}) + b"\0" +
          hf_tiny_shard("BF16", bf16s, align_pad=3))


# ---- config.json ----------------------------------------------------------------------------------

def config_seeds(c):
    for name in ("gemma3-tiny", "gemma3-tiny-vlm"):
        with open(os.path.join(ASSETS, name, "config.json"), "rb") as f:
            c.add("config_json", f"{name}.json", f.read())
    base = json.load(open(os.path.join(ASSETS, "gemma3-tiny", "config.json")))
    old = dict(base)
    old.pop("layer_types", None)
    old.pop("rope_parameters", None)
    old.update({"sliding_window_pattern": 2, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
                "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "eos_token_id": [1, 106],
                "image_token_id": 262144, "boi_token_id": 255999})
    c.add("config_json", "old-form.json", json.dumps(old, indent=1).encode())
    c.add("config_json", "flat-rope.json", json.dumps(
        {"num_hidden_layers": 4, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5},
         "vision_config": {"image_size": [224, 224], "patch_size": 14, "hidden_size": 64,
                           "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                           "model_type": "siglip_vision_model", "hidden_act": "gelu_pytorch_tanh"}}).encode())
    c.add("config_json", "empty-object.json", b"{}")


# ---- documents ------------------------------------------------------------------------------------

def document_seeds(c):
    c.add("document", "ascii.md", b"# Title\n\nSome *Markdown* text.\n- a list\n")
    c.add("document", "utf8-bom-crlf.txt", "\ufeffcaf\u00e9 \u2014 \u6d4b\u8bd5 \U0001F600\r\nline two\r\n".encode())
    c.add("document", "blank.txt", b" \t\r\n\f\v ")
    c.add("document", "bad-utf8.txt", b"ok \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf")
    c.add("document", "nul.txt", b"text\0more")
    c.add("document", "bom-only.txt", b"\xef\xbb\xbf")
    with open("/usr/share/common-licenses/Apache-2.0", "rb") if os.path.exists(
            "/usr/share/common-licenses/Apache-2.0") else open(os.devnull, "rb") as f:
        head = f.read(2048)
    if head:
        c.add("document", "apache-head.txt", head)


# ---- images ---------------------------------------------------------------------------------------

def pnm(w, h, magic, maxval=255):
    ch = 3 if magic == b"P6" else 1
    body = bytes(RNG.randrange(maxval + 1) for _ in range(w * h * ch)) if maxval < 256 else \
        b"".join(struct.pack(">H", RNG.randrange(maxval + 1)) for _ in range(w * h * ch))
    return magic + b"\n%d %d\n%d\n" % (w, h, maxval) + body


def bmp24(w, h):
    row = (3 * w + 3) // 4 * 4
    pixels = b"".join(bytes(RNG.randrange(256) for _ in range(3 * w)) + b"\0" * (row - 3 * w) for _ in range(h))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pixels), 0, 0, 54) + info + pixels


def tga(w, h):
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 32, 8) + \
        bytes(RNG.randrange(256) for _ in range(4 * w * h))


def hdr(w, h):
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (h, w) + \
        bytes(RNG.randrange(256) for _ in range(4 * w * h))


def image_seeds(c, tmp, have_ffmpeg):
    media = os.path.join(ASSETS, "media")
    for f in sorted(os.listdir(media)):
        if f.endswith((".png", ".jpg")) and os.path.getsize(os.path.join(media, f)) <= 8192:
            with open(os.path.join(media, f), "rb") as fh:
                c.add("image", f, fh.read())
    c.add("image", "rgb-5x4.ppm", pnm(5, 4, b"P6"))
    c.add("image", "grey-7x3.pgm", pnm(7, 3, b"P5"))
    c.add("image", "grey16-3x3.pgm", pnm(3, 3, b"P5", 65535))
    c.add("image", "rgb-6x5.bmp", bmp24(6, 5))
    c.add("image", "rgba-4x4.tga", tga(4, 4))
    c.add("image", "tiny-3x2.hdr", hdr(3, 2))
    if have_ffmpeg:
        src = os.path.join(media, "square-32.png")
        for ext in ("gif", "jpg", "bmp", "tga"):
            out = os.path.join(tmp, "img." + ext)
            args = ["ffmpeg", "-v", "error", "-y", "-i", src, "-vf", "scale=12:9"]
            if ext == "jpg":
                args += ["-q:v", "8", "-pix_fmt", "yuvj420p"]
            if subprocess.run(args + [out]).returncode == 0:
                with open(out, "rb") as fh:
                    c.add("image", "ffmpeg-12x9." + ext, fh.read())
        progressive = os.path.join(tmp, "progressive.jpg")
        # a progressive JPEG is what stb_image's second decoder path reads
        if subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-vf", "scale=16:16", "-pix_fmt", "yuvj444p",
                           "-q:v", "5", progressive]).returncode == 0:
            with open(progressive, "rb") as fh:
                c.add("image", "ffmpeg-16x16-444.jpg", fh.read())


# ---- videos ---------------------------------------------------------------------------------------

VIDEOS = [  # name, ffmpeg output arguments
    ("h264.mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "4", "-bf", "2", "-pix_fmt", "yuv420p"]),
    ("h264.ts", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-f", "mpegts"]),
    ("mpeg4.avi", ["-c:v", "mpeg4", "-g", "3", "-q:v", "10"]),
    ("mjpeg.mkv", ["-c:v", "mjpeg", "-q:v", "10"]),
    ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "4", "-b:v", "50k"]),
    ("mpeg2.mpg", ["-c:v", "mpeg2video", "-g", "4", "-q:v", "10", "-f", "mpeg"]),
    ("gif.gif", ["-f", "gif"]),
    ("hevc.mov", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none:keyint=4"]),
]


def video_seeds(c, tmp, have_ffmpeg):
    if not have_ffmpeg:
        print("make-fuzz-corpus: no ffmpeg: the video target gets no seeds", file=sys.stderr)
        return
    for name, args in VIDEOS:
        out = os.path.join(tmp, name)
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=32x24:rate=8:duration=1",
               "-an"] + args + [out]
        if subprocess.run(cmd).returncode != 0 or not os.path.exists(out):
            print(f"make-fuzz-corpus: ffmpeg could not write {name}; skipped", file=sys.stderr)
            continue
        with open(out, "rb") as fh:
            data = fh.read()
        if len(data) <= 65536:
            c.add("video", name, data)


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus"))
    os.makedirs(out, exist_ok=True)
    c = Corpus(out)
    vocab = tiny_vocab()
    have_ffmpeg = shutil.which("ffmpeg") is not None
    with tempfile.TemporaryDirectory() as tmp:
        safetensors_seeds(c)
        gguf_seeds(c, vocab)
        sp_seeds(c, vocab)
        config_seeds(c)
        document_seeds(c)
        image_seeds(c, tmp, have_ffmpeg)
        video_seeds(c, tmp, have_ffmpeg)
        # last, so that the targets above keep the damaged copies (drawn from one RNG) they had before
        tokenizer_model_seeds(c, vocab)
        hf_dir_seeds(c)
    for t in sorted(c.counts):
        print(f"make-fuzz-corpus: {t}: {c.counts[t]} seeds in {os.path.join(out, t)}")


if __name__ == "__main__":
    main()
