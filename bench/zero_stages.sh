#!/usr/bin/env bash
# Step time and per-rank model-state bytes of a config at ZeRO stages 0-3 on 1, 2 and 4
# ranks on this machine, as a markdown table. Threads per rank = cores / ranks.
#   bash bench/zero_stages.sh [CONFIG.yaml] [STEPS]
#   LAUNCHER=zt bash bench/zero_stages.sh ...   under zt launch (Gloo) instead of mpirun (MPI)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/gpt2-124m.yaml}
steps=${2:-4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "| ranks | stage | step time (s) | params MiB/rank | grads MiB/rank | optimizer MiB/rank | allocator peak MiB/rank | comm MiB sent/rank/step |"
echo "|---|---|---|---|---|---|---|---|"
for world in 1 2 4; do
  for stage in 0 1 2 3; do
    name="w${world}s${stage}"
    # Same global batch at every world size: 4 sequences per step.
    mb=$((4 / world))
    if [[ ${LAUNCHER:-mpirun} == zt ]]; then
      launch=(build/zt launch --nproc-per-node "$world" --master-port 29650 --)
    else
      launch=(mpirun --oversubscribe --bind-to none -np "$world")
    fi
    "${launch[@]}" build/zt train "$config" \
      --set run.out_dir="$out" --set run.name="$name" --set train.steps="$steps" --set train.log_every=1 \
      --set train.micro_batch="$mb" --set train.global_batch=4 --set parallel.zero_stage="$stage" \
      > "$out/$name.log" 2>&1 || { echo "| $world | $stage | failed: see $out/$name.log |"; continue; }
    python3 - "$out/$name/metrics.jsonl" "$world" "$stage" "$steps" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
world, stage, steps = sys.argv[2], sys.argv[3], int(sys.argv[4])
last = rows[-1]
# Skip the first step (it touches every buffer for the first time).
times = [r["tokens"] / 1 for r in rows]
step_s = [ (rows[i]["elapsed_s"] - rows[i-1]["elapsed_s"]) for i in range(1, len(rows)) ]
t = sorted(step_s)[len(step_s)//2]
ms = last["model_state_bytes"]; mib = 1 << 20
comm = sum(last["comm_bytes_sent"].values()) / steps / mib
print(f"| {world} | {stage} | {t:.2f} | {ms['params']/mib:.0f} | {ms['grads']/mib:.0f} | {ms['optimizer']/mib:.0f} | {last['memory']['peak_total']/mib:.0f} | {comm:.0f} |")
PY
  done
done
