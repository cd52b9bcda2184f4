#!/usr/bin/env bash
# cli_attn.sh: `unisparse attn` end to end: JSON fields and values, the table, bad options and
# bad files. Usage: cli_attn.sh path/to/unisparse
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" attn --help | grep -q -- '--synthetic KIND' || fail "--help lists no --synthetic"
"$bin" --help | grep -q attn || fail "top-level --help lists no attn"

"$bin" attn --synthetic mixed --n 1500 --heads 4 --kv-heads 2 --head-dim 64 --json >"$tmp/out.jsonl"
python3 - "$tmp/out.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
methods = [r["method"] for r in rows]
assert methods == ["dense", "unisparse", "xattention", "flexprefill", "minference", "ashape"], methods
need = "method device n heads kv_heads head_dim density est_ms attn_ms total_ms rel_err mass_recall".split()
for r in rows:
    for k in need:
        assert k in r, (r["method"], k)
    assert r["n"] == 1500 and r["heads"] == 4 and r["kv_heads"] == 2 and r["head_dim"] == 64
    assert 0 < r["density"] <= 1, r
    assert 0 <= r["mass_recall"] <= 1.000001, r
    assert r["rel_err"] >= 0
dense = rows[0]
assert dense["rel_err"] == 0 and dense["density"] == 1 and dense["mass_recall"] == 1
uni = rows[1]
assert uni["rel_err"] < 0.05 and uni["mass_recall"] > 0.97, uni
print("json ok")
PY

"$bin" attn --synthetic sinks --n 600 --heads 2 --kv-heads 1 --head-dim 32 --methods dense,unisparse --dtype bf16 \
  | grep -q '^unisparse' || fail "table has no unisparse row"

# a --qkv file written independently (Python's struct + json), bf16 with image spans
python3 - "$tmp/spans.safetensors" <<'PY'
import json, random, struct, sys
random.seed(4)
hq, hkv, n, d = 2, 1, 300, 64
def bf16(x):  # round to nearest even, as the format defines
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    return (b + 0x7FFF + ((b >> 16) & 1)) >> 16
blobs, header, off = [], {}, 0
for name, h in (("q", hq), ("k", hkv), ("v", hkv)):
    vals = [bf16(random.gauss(0, 1)) for _ in range(h * n * d)]
    raw = struct.pack("<%dH" % len(vals), *vals)
    header[name] = {"dtype": "BF16", "shape": [h, n, d], "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
header["__metadata__"] = {"mask": "spans", "spans": "[[10, 90], [200, 260]]"}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
"$bin" attn --qkv "$tmp/spans.safetensors" --methods dense,unisparse --block 64 --tau 1 --json >"$tmp/spans.jsonl"
python3 - "$tmp/spans.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]["mask"] == "spans" and rows[0]["dtype"] == "bf16" and rows[0]["n"] == 300, rows[0]
assert rows[1]["density"] == 1 and rows[1]["rel_err"] < 1e-6, rows[1]   # tau = 1 keeps every block
print("qkv file ok")
PY

expect_fail() { # expected status, text in stderr, command...
  local want=$1 text=$2; shift 2
  set +e; "$@" 2>"$tmp/err" >/dev/null; local got=$?; set -e
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want"
  grep -q -- "$text" "$tmp/err" || fail "$* said '$(cat "$tmp/err")', expected '$text'"
}
expect_fail 2 "unknown option" "$bin" attn --synthetic mixed --bogus
expect_fail 2 "unknown method" "$bin" attn --synthetic mixed --methods dense,nope
expect_fail 2 "tau" "$bin" attn --synthetic mixed --n 300 --tau 2
expect_fail 2 "block" "$bin" attn --synthetic mixed --n 300 --block 100
expect_fail 2 "not a valid integer" "$bin" attn --synthetic mixed --n lots
expect_fail 2 "exactly one" "$bin" attn
expect_fail 2 "--gpu-kernel fast" "$bin" attn --synthetic mixed --gpu-kernel fast
expect_fail 1 "$tmp/missing.safetensors" "$bin" attn --qkv "$tmp/missing.safetensors"
printf 'garbage' >"$tmp/short.safetensors"
expect_fail 1 "$tmp/short.safetensors" "$bin" attn --qkv "$tmp/short.safetensors"
expect_fail 2 "unknown command" "$bin" frobnicate
echo "cli_attn: all checks passed"
