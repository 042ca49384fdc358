#!/usr/bin/env bash
# bf16 against fp32 step time (build/bench/bench_step), interleaved in one run so that the
# machine's noise hits both alike: for each config and each ISA this CPU has (the native one,
# then AVX2 through ZT_CPU_ISA on an AVX-512 machine), ROUNDS rounds of fp32 then bf16. Prints
# every run, then the best ms/step of each, its % of the FMA peak measured in that run, and
# bf16's speed relative to fp32 (> 1: bf16 is faster).
#   bash bench/bf16_vs_fp32.sh [ROUNDS] [CONFIG...]   (default: 3 rounds, the default job and gpt2-124m)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(configs/shakespeare-char.yaml configs/gpt2-124m.yaml)
isas=(native)
grep -qw avx512f /proc/cpuinfo && isas+=(avx2)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
steps_for() { [[ $1 == *gpt2-124m* ]] && echo "--steps 5 --warmup 2" || echo "--steps 30 --warmup 5"; }
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    for round in $(seq "$rounds"); do
      for precision in fp32 bf16; do
        # shellcheck disable=SC2046
        out=$(if [[ $isa == native ]]; then ./build/bench/bench_step "$cfg" $(steps_for "$cfg") --set precision.compute=$precision
              else ZT_CPU_ISA=$isa ./build/bench/bench_step "$cfg" $(steps_for "$cfg") --set precision.compute=$precision; fi)
        ms=$(awk '/^ms\/step/ {print $2}' <<< "$out")
        peak=$(awk '/^FMA peak/ {print $3}' <<< "$out")
        pct=$(sed -n 's/^FMA peak.*reaches \([0-9]*\)% of it.*/\1/p' <<< "$out")
        kernels=$(sed -n 's/^threads .*CPU kernels \(.*\)$/\1/p' <<< "$out")
        printf '%-34s %-8s round %d %-5s %8s ms/step  %3s%% of FMA peak %s GFLOP/s (%s)\n' \
          "$cfg" "$isa" "$round" "$precision" "$ms" "$pct" "$peak" "$kernels"
        echo "$cfg $isa $precision $ms $pct" >> "$results"
      done
    done
  done
done
echo
printf '%-34s %-8s %12s %12s %s\n' config isa "fp32 ms (%)" "bf16 ms (%)" "bf16 speed / fp32"
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    best() { awk -v c="$cfg" -v i="$isa" -v p="$1" '$1 == c && $2 == i && $3 == p' "$results" | sort -k4 -g | head -1; }
    f=$(best fp32) b=$(best bf16)
    printf '%-34s %-8s %12s %12s %.2fx\n' "$cfg" "$isa" "$(awk '{printf "%.1f (%s)", $4, $5}' <<< "$f")" \
      "$(awk '{printf "%.1f (%s)", $4, $5}' <<< "$b")" "$(awk -v a="$(awk '{print $4}' <<< "$f")" '{print a / $4}' <<< "$b")"
  done
done
