#!/usr/bin/env bash
# zerotrain against PyTorch on the same machine, in the same run: training steps of the
# default job (configs/shakespeare-char.yaml) and of GPT-2 124M (configs/gpt2-124m.yaml), 2
# threads each, through build/bench/bench_step and bench/pytorch_gpt2_step.py with the same
# model shape, taking turns ROUNDS times so that a shared machine's noise hits both alike. At the native ISA and, on an AVX-512 machine, at AVX2 for both: ZT_CPU_ISA=avx2
# for zerotrain; ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and
# MKL_ENABLE_INSTRUCTIONS=AVX2 for PyTorch (its kernels, its oneDNN and its MKL sgemm).
# PRECISION=bf16 compares bf16 training (precision.compute: bf16 against PyTorch's bf16
# autocast, both with fp32 master weights); the default is fp32.
# Needs a Python with torch: PYTHON=/path/to/python (default python3).
#   bash bench/vs_pytorch.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/machine.sh
rounds=${1:-3}
python=${PYTHON:-python3}
precision=${PRECISION:-fp32}
[[ $precision == fp32 || $precision == bf16 ]] || { echo "vs_pytorch.sh: PRECISION=$precision: must be fp32 or bf16" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || { echo "vs_pytorch.sh: $python cannot import torch (set PYTHON)" >&2; exit 1; }
[[ -x build/bench/bench_step ]] || { echo "vs_pytorch.sh: build/bench/bench_step missing (bash scripts/build.sh)" >&2; exit 1; }
echo "machine: $(machine_line); precision $precision"
isas=(native)
grep -qw avx512f /proc/cpuinfo && isas+=(avx2)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# The PyTorch model and steps matching each config (the default job's vocabulary is the 65
# characters of tinyshakespeare).
declare -A shape=(
  [configs/shakespeare-char.yaml]="--layers 4 --heads 4 --d 128 --vocab 65 --batch 8 --seq 128"
  [configs/gpt2-124m.yaml]="--layers 12 --heads 12 --d 768 --vocab 50257 --batch 4 --seq 64"
)
declare -A steps=([configs/shakespeare-char.yaml]="--steps 40 --warmup 5" [configs/gpt2-124m.yaml]="--steps 6 --warmup 2")
# One round of one config at one ISA: zerotrain, then PyTorch.
one_round() {
  local cfg=$1 isa=$2 round=$3 env_zt=() env_pt=()
  if [[ $isa == avx2 ]]; then
    env_zt=(ZT_CPU_ISA=avx2)
    env_pt=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
  fi
  local zt_out pt_out zt_ms zt_pct peak pt_ms pt_version pt_cap pt_pct speed
  # shellcheck disable=SC2086
  zt_out=$(env "${env_zt[@]}" OMP_NUM_THREADS=2 ./build/bench/bench_step "$cfg" ${steps[$cfg]} --set precision.compute=$precision)
  # shellcheck disable=SC2086
  pt_out=$(env "${env_pt[@]}" OMP_NUM_THREADS=2 "$python" bench/pytorch_gpt2_step.py ${steps[$cfg]} --threads 2 --dtype "$precision" ${shape[$cfg]})
  zt_ms=$(sed -n 's/^ms\/step .*(median \([0-9.]*\),.*/\1/p' <<< "$zt_out")
  zt_pct=$(sed -n 's/^FMA peak.*reaches \([0-9]*\)% of it.*/\1/p' <<< "$zt_out")
  peak=$(awk '/^FMA peak/ {print $3; exit}' <<< "$zt_out")
  pt_ms=$(sed -n 's/.* ms\/step \([0-9.]*\) .*/\1/p' <<< "$pt_out")
  pt_version=$(sed -n 's/^pytorch \([^ ]*\) .*/\1/p' <<< "$pt_out")
  pt_cap=$(sed -n 's/.* capability \([A-Za-z0-9_]*\).*/\1/p' <<< "$pt_out")
  # PyTorch's share of the same peak: the same model FLOPs in its time.
  pt_pct=$(awk -v z="$zt_ms" -v p="$pt_ms" -v zp="$zt_pct" 'BEGIN {printf "%.0f", zp * z / p}')
  speed=$(awk -v z="$zt_ms" -v p="$pt_ms" 'BEGIN {printf "%.2f", p / z}')
  printf '%-30s %-7s round %d  zerotrain %7.1f ms (%s%% of %s GFLOP/s)  pytorch %s %7.1f ms (%s%%, %s)  zerotrain %sx as fast\n' \
    "$cfg" "$isa" "$round" "$zt_ms" "$zt_pct" "$peak" "$pt_version" "$pt_ms" "$pt_pct" "$pt_cap" "$speed"
  echo "$cfg $isa $zt_ms $pt_ms $speed" >> "$results"
}
configs=(configs/shakespeare-char.yaml configs/gpt2-124m.yaml)
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    for round in $(seq "$rounds"); do one_round "$cfg" "$isa" "$round"; done
  done
done
echo
for cfg in "${configs[@]}"; do
  for isa in "${isas[@]}"; do
    awk -v cfg="$cfg" -v isa="$isa" '$1 == cfg && $2 == isa {print $5}' "$results" | sort -n | awk -v cfg="$cfg" -v isa="$isa" \
      '{v[NR] = $1} END {printf "%-30s %-7s zerotrain / pytorch speed, median over %d rounds: %.2fx (%.2f-%.2f)\n", cfg, isa, NR, v[int((NR + 1) / 2)], v[1], v[NR]}'
  done
done
