#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets (build-fuzz: clang, ASan + UBSan, no CUDA), make the seed
# corpora, and run each target in turn; see FUZZING.md.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 60)
#   TARGET   safetensors gguf config_json qkv_file sp_from_gguf video image document tokenizer_model
#            hf_dir (default: all)
# Each target runs alone (-jobs=1), with -rss_limit_mb=2048 -timeout=10 and its dictionary
# (fuzz/dict/<target>.dict) when there is one. New inputs go to fuzz/corpus/<target>/, crash, leak,
# timeout and out-of-memory inputs and libFuzzer's log to fuzz/crashes/<target>/. Prints one line per
# target: runs, coverage (cov: of libFuzzer's last stats line) and findings (new artifacts). Exit status:
# 0 when no target found anything, 1 otherwise, 2 on a build or usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
all=(safetensors gguf config_json qkv_file sp_from_gguf video image document tokenizer_model hf_dir)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
case $secs in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${all[*]})" >&2; exit 2; }
done

build=build-fuzz
jobs=${FUZZ_BUILD_JOBS:-2}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DUS_ENABLE_CUDA=OFF -DUS_BUILD_FUZZ=ON -DUS_BUILD_TESTS=OFF >/dev/null || exit 2
fi
cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}" >/dev/null || exit 2
python3 scripts/make-fuzz-corpus.py fuzz/corpus >/dev/null || exit 2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
found_any=0
printf '%-15s %10s %7s %9s  %s\n' target runs cov findings artifacts
for t in "${targets[@]}"; do
  crashes="$root/fuzz/crashes/$t"
  mkdir -p "$crashes"
  before=$(find "$crashes" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=$root/fuzz/dict/$t.dict")
  log="$crashes/fuzz-0.log"
  rm -f "$log"
  # -jobs=1 runs the fuzzer in a child that logs to fuzz-0.log in the working directory.
  (cd "$crashes" && "$root/$build/bin/fuzz_$t" "$root/fuzz/corpus/$t" "${dict[@]}" -jobs=1 -workers=1 \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >/dev/null 2>&1) || true
  runs=$(grep -ao 'stat::number_of_executed_units: [0-9]*' "$log" 2>/dev/null | tail -1 | awk '{print $2}' || true)
  if [ -z "$runs" ]; then # a crash ends the run before the final stats: the last status line has the count
    runs=$(grep -aoE '^#[0-9]+' "$log" 2>/dev/null | tail -1 | tr -d '#' || true)
  fi
  cov=$(grep -aoE 'cov: [0-9]+' "$log" 2>/dev/null | tail -1 | awk '{print $2}' || true)
  after=$(find "$crashes" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
  new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')
  n_new=$(printf '%s' "$new" | grep -c . || true)
  [ "$n_new" -gt 0 ] && found_any=1
  printf '%-15s %10s %7s %9s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "$n_new" "$(printf '%s' "$new" | xargs -r -n1 basename | tr '\n' ' ')"
done
exit $found_any
