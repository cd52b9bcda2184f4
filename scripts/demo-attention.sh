#!/usr/bin/env bash
# demo-attention.sh: build and run UniSparse against dense attention and the baselines on the embedded
# default input (a structured synthetic one: sinks, local windows, vertical stripes, needles).
# Usage: scripts/demo-attention.sh [extra `unisparse attn` options]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/bin/unisparse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target unisparse >/dev/null
fi
exec build/bin/unisparse attn --synthetic mixed --n 8192 --heads 8 --kv-heads 2 --head-dim 128 "$@"
