#!/usr/bin/env bash
# cli_generate.sh: `unisparse generate` end to end on the real Gemma 3 270M checkpoint: JSON fields,
# greedy determinism, dense and UniSparse agreeing on a short prompt, bad inputs. Exits 77 (CTest:
# skipped) when the checkpoint is absent. Usage: cli_generate.sh path/to/unisparse path/to/model.gguf
set -euo pipefail
bin=$1 model=$2
if [ ! -f "$model" ]; then
  echo "cli_generate: skipped: $model is absent (scripts/fetch-gemma3-270m.sh fetches it)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" generate --help | grep -q -- '--max-tokens' || fail "--help lists no --max-tokens"
"$bin" generate --model "$model" --prompt "The capital of France is" --max-tokens 8 --json >"$tmp/a.json"
"$bin" generate --model "$model" --prompt "The capital of France is" --max-tokens 8 --json \
  --attention unisparse >"$tmp/b.json"
python3 - "$tmp/a.json" "$tmp/b.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("ids", "text", "prompt_tokens", "prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms"):
    assert k in a, k
assert len(a["ids"]) == 8 and a["stop"] == "max_tokens", a
assert a["ids"] == b["ids"], (a["ids"], b["ids"])  # one short block: UniSparse keeps everything
assert "Paris" in a["text"] or "capital" in a["text"], a["text"]
print("generate json ok:", repr(a["text"]))
PY

# --dump-qkv writes a global layer's attention input (post-RoPE q, k, v), which `attn --qkv` reads
# back with the shapes of the model's global layers
"$bin" generate --model "$model" --prompt "The capital of France is Paris. The capital of Italy is" \
  --max-tokens 1 --dump-qkv "5:$tmp/l5.safetensors" --json >/dev/null
"$bin" attn --qkv "$tmp/l5.safetensors" --methods dense,unisparse --json >"$tmp/l5.jsonl"
python3 - "$tmp/l5.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[0]
assert (r["heads"], r["kv_heads"], r["head_dim"], r["mask"]) == (4, 1, 256, "causal"), r
assert 10 <= r["n"] <= 20, r
print("dump-qkv ok:", r["n"], "tokens")
PY

expect_fail() { # expected status, text in stderr, command...
  local want=$1 text=$2; shift 2
  set +e; "$@" 2>"$tmp/err" >/dev/null; local got=$?; set -e
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want"
  grep -q -- "$text" "$tmp/err" || fail "$* said '$(cat "$tmp/err")', expected '$text'"
}
expect_fail 1 "$tmp/none.gguf" "$bin" generate --model "$tmp/none.gguf" --prompt hi
head -c 1000000 "$model" >"$tmp/cut.gguf"
expect_fail 1 "$tmp/cut.gguf" "$bin" generate --model "$tmp/cut.gguf" --prompt hi
expect_fail 2 "prompt" "$bin" generate --model "$model"
expect_fail 2 "not a global layer" "$bin" generate --model "$model" --prompt hi --dump-qkv "4:$tmp/x.safetensors"
expect_fail 2 "LAYER:FILE" "$bin" generate --model "$model" --prompt hi --dump-qkv "five"
expect_fail 2 "unknown option" "$bin" generate --model "$model" --prompt hi --frobnicate
expect_fail 2 "--block 32" "$bin" generate --model "$model" --prompt hi --attention unisparse --block 32
echo "cli_generate: all checks passed"
