#!/usr/bin/env bash
# Runs each libFuzzer harness (fuzz/, built with clang, ASan + UBSan, by
# `scripts/sanitize.sh address` into build-asan/fuzz/) for SECONDS (default 60), nproc at a
# time, from its seed corpus fuzz/corpus/NAME/ with the dictionary fuzz/dict/NAME.dict. New
# inputs go to build-asan/fuzz-corpus/NAME/ (the committed seeds are not touched); a crash
# leaves build-asan/fuzz-artifacts/NAME-crash-* and fails the run.
# Prints each harness's executions and libFuzzer's coverage (cov: edges, ft: features).
#   scripts/fuzz.sh [SECONDS] [NAME...]     (CI: 60 s each; bench/fuzz.sh runs longer)
#   RUNS=N scripts/fuzz.sh ...              each harness also stops after N executions
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
bash scripts/sanitize.sh address --build-only
out=build-asan

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in fuzz/corpus/*/; do names+=("$(basename "$d")"); done
fi
mkdir -p "$out/fuzz-artifacts" "$out/fuzz-logs"
# Token files carry a 1 KiB header, safetensors seeds are whole small models and BPE seeds
# whole small tokenizers.
max_len() { case "$1" in token_file | safetensors) echo 8192 ;; bpe) echo 16384 ;; *) echo 4096 ;; esac; }

run_one() {
  local name=$1
  mkdir -p "$out/fuzz-corpus/$name"
  local dict=()
  [ -f "fuzz/dict/$name.dict" ] && dict=(-dict="fuzz/dict/$name.dict")
  UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$out/fuzz/fuzz_$name" "$out/fuzz-corpus/$name" "fuzz/corpus/$name" \
    -max_total_time="$seconds" ${RUNS:+-runs="$RUNS"} -max_len="$(max_len "$name")" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$out/fuzz-artifacts/$name-" -print_final_stats=1 "${dict[@]}" \
    > "$out/fuzz-logs/$name.log" 2>&1
}

pids=()
status=0
for name in "${names[@]}"; do
  run_one "$name" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$(nproc)" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done

printf '%-12s %12s %8s %8s %8s  %s\n' harness executions exec/s cov ft result
for name in "${names[@]}"; do
  log="$out/fuzz-logs/$name.log"
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  rate=$(grep -a 'stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  last=$(grep -aE '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<< "$last")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<< "$last")
  result=clean
  if grep -aqE '^==[0-9]+==ERROR|runtime error|deadly signal|uncaught exception|SUMMARY: ' "$log"; then result="FAILED (see $log)"; status=1; fi
  printf '%-12s %12s %8s %8s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit "$status"
