#!/usr/bin/env bash
# zerotrain against PyTorch on the same machine, in the same run: GPT-2 124M training steps
# (B=4, T=64, AdamW, 2 threads each) through build/bench/bench_step configs/gpt2-124m.yaml and
# bench/pytorch_gpt2_step.py, taking turns ROUNDS times so that a shared machine's noise hits
# both alike. At the native ISA and, on an AVX-512 machine, at AVX2 for both: ZT_CPU_ISA=avx2
# for zerotrain; ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and
# MKL_ENABLE_INSTRUCTIONS=AVX2 for PyTorch (its kernels, its oneDNN and its MKL sgemm).
# Needs a Python with torch: PYTHON=/path/to/python (default python3).
#   bash bench/vs_pytorch.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
python=${PYTHON:-python3}
"$python" -c "import torch" 2>/dev/null || { echo "vs_pytorch.sh: $python cannot import torch (set PYTHON)" >&2; exit 1; }
[[ -x build/bench/bench_step ]] || { echo "vs_pytorch.sh: build/bench/bench_step missing (bash scripts/build.sh)" >&2; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
isas=(native)
grep -qw avx512f /proc/cpuinfo && isas+=(avx2)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for isa in "${isas[@]}"; do
  env_zt=() env_pt=()
  if [[ $isa == avx2 ]]; then
    env_zt=(ZT_CPU_ISA=avx2)
    env_pt=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
  fi
  for round in $(seq "$rounds"); do
    zt_out=$(env "${env_zt[@]}" OMP_NUM_THREADS=2 ./build/bench/bench_step configs/gpt2-124m.yaml --steps 6 --warmup 2)
    pt_out=$(env "${env_pt[@]}" OMP_NUM_THREADS=2 "$python" bench/pytorch_gpt2_step.py --steps 6 --warmup 2 --threads 2)
    zt_ms=$(sed -n 's/^ms\/step .*(median \([0-9.]*\),.*/\1/p' <<< "$zt_out")
    zt_pct=$(sed -n 's/^FMA peak.*reaches \([0-9]*\)% of it.*/\1/p' <<< "$zt_out")
    peak=$(awk '/^FMA peak/ {print $3; exit}' <<< "$zt_out")
    pt_ms=$(sed -n 's/.* ms\/step \([0-9.]*\) .*/\1/p' <<< "$pt_out")
    pt_cap=$(sed -n 's/.* capability \([A-Za-z0-9_]*\).*/\1/p' <<< "$pt_out")
    # PyTorch's share of the same peak: the same model FLOPs in its time.
    pt_pct=$(awk -v z="$zt_ms" -v p="$pt_ms" -v zp="$zt_pct" 'BEGIN {printf "%.0f", zp * z / p}')
    speed=$(awk -v z="$zt_ms" -v p="$pt_ms" 'BEGIN {printf "%.2f", p / z}')
    printf '%-7s round %d  zerotrain %7.1f ms (%s%% of %s GFLOP/s)  pytorch %7.1f ms (%s%%, %s)  zerotrain %sx as fast\n' \
      "$isa" "$round" "$zt_ms" "$zt_pct" "$peak" "$pt_ms" "$pt_pct" "$(head -c 40 <<< "$pt_out" | awk '{print $2}') $pt_cap" "$speed"
    echo "$isa $zt_ms $pt_ms $speed" >> "$results"
  done
done
echo
for isa in "${isas[@]}"; do
  awk -v isa="$isa" '$1 == isa {print $4}' "$results" | sort -n | awk -v isa="$isa" \
    '{v[NR] = $1} END {printf "%-7s zerotrain / pytorch speed, median over %d rounds: %.2fx (%.2f-%.2f)\n", isa, NR, v[int((NR + 1) / 2)], v[1], v[NR]}'
done
