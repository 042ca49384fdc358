#!/usr/bin/env bash
# Peak bytes per rank (measured, and zt plan's prediction) and step time for fp32/bf16 x
# activation checkpointing off/on x ZeRO stages 0-3 at 2 ranks (mpirun on this machine),
# as a markdown table.
#   bash bench/memory_table.sh [CONFIG.yaml] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/gpt2-124m.yaml}
steps=${2:-4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
build/zt plan "$config" --world 2 > "$out/plan.txt"
echo "| precision | act. ckpt | stage | peak MiB/rank (measured) | zt plan MiB/rank | plan / measured | step time (s) |"
echo "|---|---|---|---|---|---|---|"
for precision in fp32 bf16; do
  for ckpt in none all; do
    for stage in 0 1 2 3; do
      name="${precision}-${ckpt}-s${stage}"
      mpirun --oversubscribe --bind-to none -np 2 build/zt train "$config" \
        --set run.out_dir="$out" --set run.name="$name" --set train.steps="$steps" --set train.log_every=1 \
        --set parallel.zero_stage="$stage" --set precision.compute="$precision" \
        --set memory.activation_checkpointing="$ckpt" > "$out/$name.log" 2>&1 \
        || { echo "| $precision | $ckpt | $stage | failed: see $out/$name.log |"; continue; }
      plan=$(awk -v s="$stage" -v p="$precision" -v c="$ckpt" '$1==s && $2==p && $3==c {print $10}' "$out/plan.txt")
      python3 - "$out/$name/metrics.jsonl" "$precision" "$ckpt" "$stage" "$plan" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
precision, ckpt, stage, plan = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
peak = max(r["peak_bytes"] for r in rows[-1]["ranks"]) / 2**20
# Median step time, the first step (first touch of every buffer) left out.
times = sorted(b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:]))
print(f"| {precision} | {ckpt} | {stage} | {peak:.0f} | {plan:.0f} | {plan / peak:.3f} | {times[len(times) // 2]:.2f} |")
PY
    done
  done
done
