#!/usr/bin/env bash
# sweep_unisparse.sh: UniSparse's granularities and threshold against fidelity and density, on the
# structured synthetic input, for both selection rules. Prints a Markdown table.
# Usage: [SEEDS="1 2 3"] bench/sweep_unisparse.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/unisparse
n=${1:-4096}
seeds=${SEEDS:-1}
echo "| rule | cq | ck | ch | tau | seed | density | est_ms | attn_ms | rel_err | mass_recall |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for cfg in "mean 16 16 1 0.9" "mean 16 16 1 0.99" "mean 8 8 1 0.99" "mean 4 4 1 0.99" "mean 16 4 1 0.99" \
           "mean 16 2 1 0.99" "mean 16 1 1 0.9" "mean 16 1 1 0.95" "mean 16 1 1 0.98" "mean 16 1 1 0.99" \
           "mean 16 1 4 0.99" "mean 32 1 4 0.99" "mean 8 1 4 0.99" \
           "union 16 1 4 0.95" "union 16 1 4 0.97" "union 16 1 4 0.98" "union 16 1 4 0.99"; do
  set -- $cfg
  rule=$1; shift
  flag=""; [ "$rule" = mean ] && flag="--block-mean"
  for seed in $seeds; do
  "$bin" attn --synthetic mixed --n "$n" --methods unisparse --cq "$1" --ck "$2" --ch "$3" --tau "$4" --seed "$seed" $flag --json |
    python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("| %s | %s | %s | %s | %s | %s | %.3f | %.1f | %.1f | %.2e | %.4f |" % (*sys.argv[1:7], r["density"], r["est_ms"], r["attn_ms"], r["rel_err"], r["mass_recall"]))
' "$rule" "$1" "$2" "$3" "$4" "$seed"
  done
done
