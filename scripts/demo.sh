#!/usr/bin/env bash
# demo.sh: the main job on an embedded default. Long-document summarization and a question about the
# document with the real Gemma 3 270M checkpoint and UniSparse attention, on documents every Debian
# machine provides (the license texts under /usr/share/common-licenses: GPL-3 is ~8K tokens).
# Fetches the checkpoint (scripts/fetch-gemma3-270m.sh, verified) and builds when needed.
# Usage: scripts/demo.sh [OUT_DIR]   (default: demo-out/; summaries, report and answer land there)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-demo-out}
model=models/gemma-3-270m-q4_k_m.gguf
docs=(/usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0)
[ -f "$model" ] || scripts/fetch-gemma3-270m.sh
if [ ! -x build/bin/unisparse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target unisparse >/dev/null
fi
mkdir -p "$out"
echo "== summarize ${docs[*]} -> $out/ (UniSparse attention)"
build/bin/unisparse summarize --model "$model" --out "$out" --attention unisparse --max-tokens 96 "${docs[@]}"
for d in "${docs[@]}"; do
  echo "--- $(basename "$d"):"
  cat "$out/$(basename "$d").summary.md"
done
# The 270M checkpoint is a base model: the question is put as a text to continue.
question="Which version of the GNU General Public License is this, and who publishes it?"
{ cat "${docs[0]}"; printf '\n\nQuestion: %s\nAnswer:' "$question"; } >"$out/question.txt"
echo "== question about $(basename "${docs[0]}"): $question"
build/bin/unisparse generate --model "$model" --prompt-file "$out/question.txt" --attention unisparse \
  --max-tokens 40 | tee "$out/answer.txt"
