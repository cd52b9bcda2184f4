#!/usr/bin/env bash
# cli_summarize.sh: `unisparse summarize` end to end on the real Gemma 3 270M checkpoint: a batch with
# a missing, an empty, a non-UTF-8 and a binary document goes on past them and says so; a document
# longer than the context is summarized in chunks; outputs are complete files; a run killed mid-batch
# resumes, skipping what was done, and ends with nothing lost. Exits 77 (CTest: skipped) when the
# checkpoint is absent. Usage: cli_summarize.sh path/to/unisparse path/to/model.gguf
set -euo pipefail
bin=$1 model=$2
if [ ! -f "$model" ]; then
  echo "cli_summarize: skipped: $model is absent (scripts/fetch-gemma3-270m.sh fetches it)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
opts=(--model "$model" --context 512 --max-tokens 12 --attention unisparse)

"$bin" summarize --help | grep -q -- '--context' || fail "--help lists no --context"
"$bin" summarize --model "$model" >/dev/null 2>&1 && fail "no --out accepted"
[ $? -eq 0 ] || true

mkdir "$tmp/docs"
head -c 1200 /usr/share/common-licenses/Apache-2.0 >"$tmp/docs/short.txt"
head -c 3000 /usr/share/common-licenses/GPL-3 >"$tmp/docs/long.md"    # ~650 tokens: 2 chunks at 512
printf ' \n\n' >"$tmp/docs/empty.txt"
printf 'caf\xe9 au lait\n' >"$tmp/docs/latin1.txt"
printf 'PK\003\004\000\000binary' >"$tmp/docs/archive.zip"

set +e
"$bin" summarize "${opts[@]}" --out "$tmp/out" --json "$tmp/docs" "$tmp/missing.txt" >"$tmp/r1.json" 2>"$tmp/r1.err"
rc=$?
set -e
[ $rc -eq 1 ] || { cat "$tmp/r1.err"; fail "exit $rc with failed documents, expected 1"; }
python3 - "$tmp/r1.json" "$tmp/out" "$tmp" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1])); out = sys.argv[2]; tmp = sys.argv[3]
st = {os.path.basename(d["input"]): d for d in r["documents"]}
assert (r["ok"], r["skipped"], r["failed"]) == (2, 0, 4), r
for name, why in [("empty.txt", "empty"), ("latin1.txt", "UTF-8"), ("archive.zip", "binary"), ("missing.txt", "No such file")]:
    d = st[name]
    assert d["status"] == "failed" and why in d["error"] and name in d["error"], d
assert st["short.txt"]["chunks"] == 1 and st["long.md"]["chunks"] >= 2, st
for name in ("short.txt", "long.md"):
    p = os.path.join(out, name + ".summary.md")
    assert os.path.getsize(p) > 0 and st[name]["output"] == p, p
    assert 0 < st[name]["attention_density"] <= 1, st[name]
assert sorted(os.listdir(out)) == ["long.md.summary.md", "short.txt.summary.md", "summarize-report.json"], os.listdir(out)
assert json.load(open(os.path.join(out, "summarize-report.json")))["failed"] == 4
print("batch with bad documents ok")
PY

# resume: everything done is skipped; --force redoes it
"$bin" summarize "${opts[@]}" --out "$tmp/out" --json "$tmp/docs/short.txt" "$tmp/docs/long.md" >"$tmp/r2.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert (r['ok'], r['skipped']) == (0, 2), r" "$tmp/r2.json"

# interruption: kill the batch once its first summary exists, then resume
mkdir "$tmp/batch"
for i in 1 2 3; do head -c $((900 + 300 * i)) /usr/share/common-licenses/GPL-2 | tail -c 900 >"$tmp/batch/doc$i.txt"; done
"$bin" summarize "${opts[@]}" --out "$tmp/out2" "$tmp/batch" 2>/dev/null &
pid=$!
for _ in $(seq 600); do [ -e "$tmp/out2/doc1.txt.summary.md" ] && break; sleep 0.1; done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -e "$tmp/out2/doc1.txt.summary.md" ] || fail "the first summary never appeared"
for f in "$tmp"/out2/*.summary.md; do [ -s "$f" ] || fail "empty output $f after the kill"; done
"$bin" summarize "${opts[@]}" --out "$tmp/out2" --json "$tmp/batch" >"$tmp/r3.json"
python3 - "$tmp/r3.json" "$tmp/out2" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
assert r["failed"] == 0 and r["skipped"] >= 1 and r["ok"] + r["skipped"] == 3, r
names = sorted(n for n in os.listdir(sys.argv[2]) if n.endswith(".summary.md"))
assert names == ["doc1.txt.summary.md", "doc2.txt.summary.md", "doc3.txt.summary.md"], names
print("interrupted batch resumed:", r["skipped"], "skipped,", r["ok"], "summarized")
PY
echo "cli_summarize: all ok"
