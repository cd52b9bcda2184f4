#!/usr/bin/env bash
# test-sanitizers.sh: the whole test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (CPU code; the CUDA kernels are checked with compute-sanitizer on a GPU machine instead). Any
# sanitizer report fails the test that triggered it (halt_on_error), leaks included.
# Usage: scripts/test-sanitizers.sh [build-dir]   (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUS_WERROR=ON -DUS_ENABLE_CUDA=OFF \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir "$build" --output-on-failure
