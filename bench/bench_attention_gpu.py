#!/usr/bin/env python3
"""bench_attention_gpu.py: our GPU dense and UniSparse attention against PyTorch's strongest kernels,
in one run, on the same inputs and the same GPU.

  python3 bench/bench_attention_gpu.py [--bin build/bin/unisparse] [--sizes 8192,32768,131072]
                                       [--shapes 32x8x128,8x4x256,4x1x256] [--repeat 20] [--out FILE]
                                       [--methods LIST] [--tau T] [--cq C] [--block S] [--block-mean] [--qkv FILES]

For each (N, Hq x Hkv x d) it runs `unisparse attn --device cuda` (which times our dense kernel,
UniSparse and the XAttention and FlexPrefill baselines, estimation and attention apart, all on the
device, with device events, median of --repeat warm runs, and saves the input and UniSparse's block
selection), then times on that same input:
  sdpa-flash   PyTorch SDPA, flash backend (FlashAttention-2 class)
  sdpa-cudnn   PyTorch SDPA, cuDNN backend (FlashAttention-3 class)
  flex-sparse  FlexAttention given the very block mask UniSparse chose
all causal, bf16. It prints one Markdown table: total ms (estimation + attention), est_ms and
attn_ms for our rows, TFLOP/s (dense causal FLOPs over the total time, "effective" for the sparse
rows) and attn TFLOP/s (the same over the attention time alone: the kernel comparison with
flex-sparse on the same mask), density and rel_err (against our dense for our rows, against
sdpa-flash for the others). Our rows name the attention kernel that ran (wgmma or mma). Needs an
NVIDIA GPU, PyTorch with CUDA, and the safetensors package.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch.nn.attention import SDPBackend, sdpa_kernel


def timed(fn, repeat):
    """Median milliseconds of repeat warm calls, timed with CUDA events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def causal_flops(n, hq, d):
    return 4.0 * d * hq * n * (n + 1) / 2


def rel_err(x, ref):
    return (torch.linalg.vector_norm((x.float() - ref.float())) / torch.linalg.vector_norm(ref.float())).item()


def block_mask_from_selection(sel_path, hq, n, device):
    """FlexAttention BlockMask holding exactly the selected key blocks of every (head, query block):
    blocks strictly below the diagonal as full blocks, the diagonal block through the causal mask_mod."""
    from torch.nn.attention.flex_attention import BlockMask

    sel = load_file(sel_path)
    counts, offsets, indices = sel["counts"], sel["row_offset"], sel["indices"]
    heads_sel, nqb = counts.shape
    per_row = hq // heads_sel
    # the index tensors span every key block: FlexAttention transposes them into per-key-block lists
    with safe_open(sel_path, "pt") as f:
        meta = f.metadata()
    block = int(meta["block"])
    nkb = (int(meta["nk"]) + block - 1) // block
    kv_idx = torch.zeros(heads_sel, nqb, nkb, dtype=torch.int32)
    for h in range(heads_sel):
        for i in range(nqb):
            c = int(counts[h, i])
            o = int(offsets[h, i])
            kv_idx[h, i, :c] = indices[o:o + c]
    full_cnt = torch.zeros(heads_sel, nqb, dtype=torch.int32)
    full_idx = torch.zeros_like(kv_idx)
    part_cnt = torch.zeros(heads_sel, nqb, dtype=torch.int32)
    part_idx = torch.zeros_like(kv_idx)
    for h in range(heads_sel):
        for i in range(nqb):
            row = kv_idx[h, i, :int(counts[h, i])]
            full = row[row < i]
            part = row[row >= i]
            full_cnt[h, i], part_cnt[h, i] = len(full), len(part)
            full_idx[h, i, :len(full)] = full
            part_idx[h, i, :len(part)] = part

    def expand(t):
        return t.repeat_interleave(per_row, dim=0).unsqueeze(0).to(device)

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return BlockMask.from_kv_blocks(expand(part_cnt), expand(part_idx), expand(full_cnt), expand(full_idx),
                                    BLOCK_SIZE=block, mask_mod=causal, seq_lengths=(n, n))


def run_config(args, n, hq, hkv, d, tmp, real=None):
    qkv = os.path.join(tmp, "qkv.safetensors")
    sel = os.path.join(tmp, "selection.safetensors")
    source = ["--qkv", real] if real else ["--synthetic", args.kind, "--n", str(n), "--heads", str(hq), "--kv-heads",
                                           str(hkv), "--head-dim", str(d)]
    cmd = [args.bin, "attn", *source, "--device", "cuda", "--methods", args.methods, "--repeat", str(args.repeat),
           "--json", "--save-qkv", qkv, "--save-selection", sel]
    if args.tau is not None:
        cmd += ["--tau", str(args.tau)]
    if args.cq is not None:
        cmd += ["--cq", str(args.cq)]
    if args.block_mean:
        cmd += ["--block-mean"]
    if args.block is not None:
        cmd += ["--block", str(args.block)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {run.stderr.strip()}")
    out = run.stdout
    ours = {r["method"]: r for r in (json.loads(line) for line in out.splitlines() if line.startswith("{"))}
    t = load_file(qkv, device="cuda")
    q, k, v = t["q"].unsqueeze(0), t["k"].unsqueeze(0), t["v"].unsqueeze(0)  # [1, H, N, d]
    # expand K/V for the backends without GQA; the copy is made once, outside the timing
    kx, vx = k.repeat_interleave(hq // hkv, dim=1), v.repeat_interleave(hq // hkv, dim=1)
    flops = causal_flops(n, hq, d)
    rows = []
    for name in args.methods.split(","):
        r = ours[name]
        total = r["est_ms"] + r["attn_ms"]
        rows.append(dict(method=f"ours-{name} ({r.get('kernel', '?')})", ms=total, est_ms=r["est_ms"],
                         attn_ms=r["attn_ms"], tflops=flops / total / 1e9, attn_tflops=flops / r["attn_ms"] / 1e9,
                         density=r["density"], rel_err=r["rel_err"]))
    ref = None
    for name, backend in (("sdpa-flash", SDPBackend.FLASH_ATTENTION), ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel(backend):
                fn = lambda: F.scaled_dot_product_attention(q, kx, vx, is_causal=True)
                out_b = fn()
                ms = timed(fn, args.repeat)
            if ref is None:
                ref = out_b
            rows.append(dict(method=name, ms=ms, tflops=flops / ms / 1e9, attn_tflops=flops / ms / 1e9, density=1.0,
                             rel_err=rel_err(out_b, ref)))
        except Exception as e:  # a backend that refuses the shape is reported, not fatal
            rows.append(dict(method=name, error=str(e).splitlines()[0][:80]))
    try:
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention)
        bm = block_mask_from_selection(sel, hq, n, "cuda")
        fn = lambda: flex(q, kx, vx, block_mask=bm)
        out_f = fn()
        ms = timed(fn, args.repeat)
        rows.append(dict(method="flex-sparse", ms=ms, tflops=flops / ms / 1e9, attn_tflops=flops / ms / 1e9,
                         density=ours["unisparse"]["density"],
                         rel_err=rel_err(out_f, ref) if ref is not None else float("nan")))
    except Exception as e:
        rows.append(dict(method="flex-sparse", error=str(e).splitlines()[0][:80]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/bin/unisparse")
    ap.add_argument("--sizes", default="8192,32768,131072")
    ap.add_argument("--shapes", default="32x8x128,8x4x256,4x1x256")
    ap.add_argument("--kind", default="mixed")
    ap.add_argument("--methods", default="dense,unisparse,xattention,flexprefill",
                    help="our methods (dense and unisparse are required: the reference and the mask for flex-sparse)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--tau", type=float, help="UniSparse's kept mass (default: the library's, 0.98)")
    ap.add_argument("--cq", type=int, help="UniSparse's query tokens per composite token (default: the library's, 16)")
    ap.add_argument("--block", type=int, help="selection block, 64 or 128 (default: the library's, 128)")
    ap.add_argument("--block-mean", action="store_true",
                    help="UniSparse selects on each block's mean composite mass instead of the row union")
    ap.add_argument("--out", help="also write the rows as JSON lines here")
    ap.add_argument("--qkv", help="real attention inputs instead of synthetic ones: comma-separated `unisparse attn "
                                  "--qkv` files (e.g. from `unisparse generate --dump-qkv`); N and shape come from each")
    args = ap.parse_args()
    gpu = torch.cuda.get_device_name()
    source = f"real:{args.qkv}" if args.qkv else f"synthetic:{args.kind}"
    setting = f"UniSparse tau {args.tau}" if args.tau is not None else "UniSparse tau: default"
    if args.cq is not None:
        setting += f", cq {args.cq}"
    if args.block_mean:
        setting += ", block mean"
    if args.block is not None:
        setting += f", block {args.block}"
    print(f"GPU: {gpu}; torch {torch.__version__}; input {source}; bf16, causal; {setting}; "
          f"median of {args.repeat} warm runs\n")
    print("| N | Hq/Hkv/d | method | ms | est_ms | attn_ms | TFLOP/s | attn TFLOP/s | density | speedup vs sdpa-flash "
          "| rel_err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sink = open(args.out, "w") if args.out else None
    with tempfile.TemporaryDirectory() as tmp:
        if args.qkv:
            configs = []
            for path in args.qkv.split(","):
                with safe_open(path, "pt") as f:
                    hq, n, d = f.get_slice("q").get_shape()
                    hkv = f.get_slice("k").get_shape()[0]
                configs.append((n, hq, hkv, d, path))
        else:
            configs = [(n, *(int(x) for x in shape.split("x")), None) for shape in args.shapes.split(",")
                       for n in (int(x) for x in args.sizes.split(","))]
        for n, hq, hkv, d, real in configs:
            shape = f"{hq}x{hkv}x{d}"
            try:
                rows = run_config(args, n, hq, hkv, d, tmp, real)
            except Exception as e:  # one failing size is reported; the others still run
                print(f"| {n} | {shape} | all | failed: {str(e)[:200]} | | | | | | | |")
                continue
            flash = next((r["ms"] for r in rows if r["method"] == "sdpa-flash" and "ms" in r), None)
            for r in rows:
                if "error" in r:
                    print(f"| {n} | {shape} | {r['method']} | failed: {r['error']} | | | | | | | |")
                    continue
                speed = f"{flash / r['ms']:.2f}x" if flash else "-"
                est = f"{r['est_ms']:.3f}" if "est_ms" in r else ""
                att = f"{r['attn_ms']:.3f}" if "attn_ms" in r else ""
                print(f"| {n} | {shape} | {r['method']} | {r['ms']:.3f} | {est} | {att} | {r['tflops']:.0f} "
                      f"| {r['attn_tflops']:.0f} | {r['density']:.3f} | {speed} | {r['rel_err']:.2e} |")
                if sink:
                    sink.write(json.dumps(dict(r, n=n, shape=shape, gpu=gpu)) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
