#!/usr/bin/env bash
# bf16 against fp32 step time (build/bench/bench_step --versus): both models live in one
# process and take turns step by step, so that a shared machine's noise hits both alike. For
# each config and each ISA this CPU has (the native one, then through ZT_CPU_ISA the other
# AVX-512 levels on an AVX512-BF16 machine and AVX2 on an AVX-512 one), ROUNDS such
# runs; prints each run's median ms/step and % of the fp32 FMA peak measured in that run
# (vdpbf16ps and AMX can take bf16 past 100%), then per config and ISA the median over rounds of
# bf16's speed relative to fp32 (> 1: bf16 is faster), the same over the rounds of the
# fastest phase (below), and the fastest round's numbers.
#   bash bench/bf16_vs_fp32.sh [ROUNDS] [CONFIG...]   (default: 3 rounds, the default job and gpt2-124m)
# ZT_BENCH_STEPS sets the timed steps per run of the small configs (default 40; gpt2-124m: 6).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/machine.sh
rounds=${1:-3}
shift || true
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(configs/shakespeare-char.yaml configs/gpt2-124m.yaml)
# The other levels: on an AVX512-BF16 CPU the AVX-512 levels that are not its default (as zt
# reports it: amx where the CPU has AMX, avx512bf16 on Zen 4, else avx512), then AVX2.
default_isa=$(env -u ZT_CPU_ISA ./build/zt --version | sed -n 's/^cpu kernels: //p')
isas=(native)
if grep -qw avx512f /proc/cpuinfo; then
  for level in avx512bf16 avx512; do
    [[ $level == avx512bf16 ]] && ! grep -qw avx512_bf16 /proc/cpuinfo && continue
    [[ $level != "$default_isa" ]] && isas+=("$level")
  done
  isas+=(avx2)
fi
echo "machine: $(machine_line)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
steps_for() { [[ $1 == *gpt2-124m* ]] && echo "--steps 6 --warmup 2" || echo "--steps ${ZT_BENCH_STEPS:-40} --warmup 5"; }
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    for round in $(seq "$rounds"); do
      # shellcheck disable=SC2046
      out=$(if [[ $isa == native ]]; then ./build/bench/bench_step "$cfg" $(steps_for "$cfg") --set precision.compute=fp32 --versus precision.compute=bf16
            else ZT_CPU_ISA=$isa ./build/bench/bench_step "$cfg" $(steps_for "$cfg") --set precision.compute=fp32 --versus precision.compute=bf16; fi)
      # Per model: median ms/step and % of the FMA peak (in the order printed: fp32, bf16).
      read -r f_ms b_ms <<< "$(sed -n 's/^ms\/step .*(median \([0-9.]*\),.*/\1/p' <<< "$out" | tr '\n' ' ')"
      read -r f_pct b_pct <<< "$(sed -n 's/^FMA peak.*reaches \([0-9]*\)% of it.*/\1/p' <<< "$out" | tr '\n' ' ')"
      peak=$(awk '/^FMA peak/ {print $3; exit}' <<< "$out")
      kernels=$(sed -n 's/^threads .*CPU kernels \(.*\)$/\1/p' <<< "$out" | head -1)
      speed=$(awk -v f="$f_ms" -v b="$b_ms" 'BEGIN {printf "%.3f", f / b}')
      printf '%-34s %-8s round %d  fp32 %8s ms (%s%%)  bf16 %8s ms (%s%%)  bf16 speed %sx  peak %s GFLOP/s (%s)\n' \
        "$cfg" "$isa" "$round" "$f_ms" "$f_pct" "$b_ms" "$b_pct" "$speed" "$peak" "$kernels"
      echo "$cfg $isa $f_ms $f_pct $b_ms $b_pct $speed" >> "$results"
    done
  done
done
median_of() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo
# This kind of shared machine runs in phases minutes long: the same step can take ~17% longer
# while the FMA peak stays put (cross-core traffic dear). The last column takes only the rounds
# in the fastest phase: fp32 within 5% of its fastest round.
printf '%-34s %-8s %14s %14s %s\n' config isa "fp32 ms (%)" "bf16 ms (%)" \
  "bf16 speed / fp32: median over rounds | over the fastest phase's rounds"
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    rows=$(awk -v c="$cfg" -v i="$isa" '$1 == c && $2 == i' "$results")
    best=$(sort -k3 -g <<< "$rows" | head -1)  # the round with the fastest fp32 step
    median=$(awk '{print $7}' <<< "$rows" | median_of)
    fastest=$(awk '{print $3}' <<< "$best")
    fast_rows=$(awk -v f="$fastest" '$3 <= 1.05 * f' <<< "$rows")
    fast=$(awk '{print $7}' <<< "$fast_rows" | median_of)
    printf '%-34s %-8s %14s %14s %sx | %sx (%d of %d rounds)\n' "$cfg" "$isa" \
      "$(awk '{printf "%.1f (%s)", $3, $4}' <<< "$best")" "$(awk '{printf "%.1f (%s)", $5, $6}' <<< "$best")" \
      "$median" "$fast" "$(wc -l <<< "$fast_rows")" "$(wc -l <<< "$rows")"
  done
done
