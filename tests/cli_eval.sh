#!/usr/bin/env bash
# cli_eval.sh: `unisparse eval` end to end on the real Gemma 3 270M checkpoint: a tiny evaluation
# (512 tokens, one sample of two tasks, dense and UniSparse) whose results.json must hold every
# sample's fields and the aggregate, with dense's own row at relative accuracy 1, KL 0 and agreement
# 1; results.md and plot.png written; --json on stdout; bad usage refused with exit 2 and a message.
# Exits 77 (CTest: skipped) when the checkpoint is absent.
# Usage: cli_eval.sh path/to/unisparse path/to/model.gguf
set -euo pipefail
bin=$1 model=$2
if [ ! -f "$model" ]; then
  echo "cli_eval: skipped: $model is absent (scripts/fetch-gemma3-270m.sh fetches it)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" eval --help | grep -q -- '--haystack' || fail "--help lists no --haystack"
"$bin" --help | grep -q '^  eval ' || fail "unisparse --help lists no eval"

"$bin" eval --model "$model" --tasks niah_single,vt --methods dense,unisparse --lengths 512 --samples 1 \
  --seed 7 --out "$tmp/run/nested" --json >"$tmp/stdout.json"
python3 - "$tmp/run/nested" "$tmp/stdout.json" <<'PY'
import json, sys
out, stdout = sys.argv[1], sys.argv[2]
r = json.load(open(f"{out}/results.json"))
assert r["complete"] is True and r["seed"] == 7 and r["haystack"] == "noise", r
assert [s["task"] for s in r["samples"]] == ["niah_single", "vt"], r["samples"]
for s in r["samples"]:
    budget = 512 - {"niah_single": 16, "vt": 32}[s["task"]]
    assert budget - 40 <= s["prompt_tokens"] <= budget, (s["task"], s["prompt_tokens"], budget)
    assert s["expected"] and all(isinstance(e, str) for e in s["expected"]), s
    assert [x["method"] for x in s["runs"]] == ["dense", "unisparse"], s["runs"]
    for x in s["runs"]:
        for k in ("answer", "answer_ids", "stop", "score", "token_agreement", "exact_match", "kl", "density",
                  "prefill_s", "attention_s", "decode_s", "wall_s"):
            assert k in x, (k, x)
        assert 0 <= x["score"] <= 1 and 0 < x["density"] <= 1 and x["prefill_s"] > 0, x
    d = s["runs"][0]
    assert d["token_agreement"] == 1 and d["kl"] == 0 and d["exact_match"] is True, d
rows = r["aggregate"]
assert {(a["task"], a["method"]) for a in rows} == {(t, m) for t in ("niah_single", "vt", "all")
                                                    for m in ("dense", "unisparse")}, rows
for a in rows:
    assert a["length"] == 512 and a["samples"] == (2 if a["task"] == "all" else 1), a
    if a["method"] == "dense":
        assert a["relative_accuracy"] == 1 and a["kl"] == 0 and a["token_agreement"] == 1, a
        assert a["exact_match"] == 1 and a["density"] == 1, a
    else:
        assert a["kl"] >= 0 and 0 <= a["token_agreement"] <= 1 and 0 < a["density"] <= 1, a
j = json.load(open(stdout))
assert j["aggregate"] == json.loads(json.dumps(rows)), "--json prints the aggregate of results.json"
md = open(f"{out}/results.md").read()
assert "| task | length | method | accuracy | rel. to dense | token agreement |" in md, md
assert "| niah_single | 512 | dense |" in md, md
assert open(f"{out}/plot.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n", "plot.png is a PNG"
print("eval ok:", [(a["task"], a["method"], a["accuracy"], round(a["density"], 3)) for a in rows])
PY
ls -A "$tmp/run/nested" | grep -q 'partial' && fail "a temporary file was left in the output folder"

expect_fail() { # expected status, text in stderr, command...
  local want=$1 text=$2; shift 2
  set +e; "$@" 2>"$tmp/err" >/dev/null; local got=$?; set -e
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want"
  grep -q -- "$text" "$tmp/err" || fail "$* said '$(cat "$tmp/err")', expected '$text'"
}
expect_fail 2 "known: niah_single, niah_multikey, niah_multivalue, vt" \
  "$bin" eval --model "$model" --out "$tmp/x" --tasks niah_single,bogus
expect_fail 2 "length '4x'" "$bin" eval --model "$model" --out "$tmp/x" --lengths 4x
expect_fail 2 "unknown method 'sparse'" "$bin" eval --model "$model" --out "$tmp/x" --methods dense,sparse
expect_fail 2 "--out DIR" "$bin" eval --model "$model"
expect_fail 2 "--block 64 or 128" "$bin" eval --model "$model" --out "$tmp/x" --block 96
expect_fail 2 "exceed the model's context" "$bin" eval --model "$model" --out "$tmp/x" --lengths 64k
expect_fail 2 "without any haystack" "$bin" eval --model "$model" --out "$tmp/x" --lengths 64 --tasks vt
expect_fail 1 "$tmp/none.txt" "$bin" eval --model "$model" --out "$tmp/x" --haystack "$tmp/none.txt"
expect_fail 1 "$tmp/none.gguf" "$bin" eval --model "$tmp/none.gguf" --out "$tmp/x"
echo "cli_eval: all checks passed"
