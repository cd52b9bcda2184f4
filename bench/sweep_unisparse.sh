#!/usr/bin/env bash
# sweep_unisparse.sh: UniSparse's granularities and threshold against fidelity and density, on the
# structured synthetic input. Prints a Markdown table. Usage: bench/sweep_unisparse.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/unisparse
n=${1:-4096}
echo "| cq | ck | ch | tau | density | est_ms | attn_ms | rel_err | mass_recall |"
echo "|---|---|---|---|---|---|---|---|---|"
for cfg in "16 16 1 0.9" "16 16 1 0.99" "8 8 1 0.99" "4 4 1 0.99" "16 4 1 0.99" "16 2 1 0.99" \
           "16 1 1 0.9" "16 1 1 0.95" "16 1 1 0.98" "16 1 1 0.99" "16 1 4 0.99" "32 1 4 0.99" "8 1 4 0.99"; do
  set -- $cfg
  "$bin" attn --synthetic mixed --n "$n" --methods unisparse --cq "$1" --ck "$2" --ch "$3" --tau "$4" --json |
    python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("| %s | %s | %s | %s | %.3f | %.1f | %.1f | %.2e | %.4f |" % (*sys.argv[1:5], r["density"], r["est_ms"], r["attn_ms"], r["rel_err"], r["mass_recall"]))
' "$1" "$2" "$3" "$4"
done
