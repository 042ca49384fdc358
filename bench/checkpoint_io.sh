#!/usr/bin/env bash
# Checkpoint save and load throughput per rank and the training stall of a save, sync and
# async, at 1 and 2 ranks (mpirun on this machine), as a markdown table.
#   bash bench/checkpoint_io.sh [CONFIG.yaml] [OUT_DIR]
# Each run trains 6 steps saving at steps 3 and 6 (the numbers are those of the step-3 save,
# made while training goes on), then a second run resumes from step 6. When it may (root on
# Linux), the script drops the page cache before resuming so that the load reads the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/gpt2-124m.yaml}
out=${2:-$(mktemp -d)}
[ -n "${2:-}" ] || trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cold=no
echo "| ranks | save | MiB/rank | write s | write MB/s/rank | training stall s | median step s (no save) | step 4 s (after the save) | load s (verify + read) | load MB/s/rank | cold read |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for world in 1 2; do
  for mode in sync async; do
    name="w${world}-${mode}"
    async=false; [ "$mode" = async ] && async=true
    common=(--set run.out_dir="$out" --set run.name="$name" --set train.log_every=1 --set checkpoint.every=3
            --set checkpoint.keep_last=1 --set checkpoint.async="$async" --set train.micro_batch=$((4 / world))
            --set train.global_batch=4 --set parallel.zero_stage=1)
    mpirun --oversubscribe --bind-to none -np "$world" build/zt train "$config" "${common[@]}" \
      --set train.steps=6 > "$out/$name.save.log" 2>&1 || { echo "| $world | $mode | failed: see $out/$name.save.log |"; continue; }
    if sync && echo 3 2>/dev/null > /proc/sys/vm/drop_caches; then cold=yes; else cold=no; fi
    mpirun --oversubscribe --bind-to none -np "$world" build/zt train "$config" "${common[@]}" \
      --set train.steps=7 > "$out/$name.load.log" 2>&1 || { echo "| $world | $mode | resume failed: see $out/$name.load.log |"; continue; }
    python3 - "$out/$name" "$world" "$mode" "$cold" <<'PY'
import json, re, sys
base, world, mode, cold = sys.argv[1:5]
save = open(base + ".save.log").read()
load = open(base + ".load.log").read()
rows = [json.loads(l) for l in open(base + "/metrics.jsonl")]
step_s = {r["step"]: r["elapsed_s"] - p["elapsed_s"] for p, r in zip(rows, rows[1:]) if r["step"] <= 6}
if mode == "sync":
    m = re.search(r"checkpoint step 3 saved: \S+ \(([\d.]+) (MiB|GiB) per rank in ([\d.]+) s, (\d+) MB/s per rank; training stalled ([\d.]+) s", save)
    size, unit, write_s, mbs, stall = m.groups()
else:
    m = re.search(r"checkpoint step 3: snapshot taken in ([\d.]+) s", save)
    stall = m.group(1)
    m = re.search(r"checkpoint step 3 published: \S+ \(([\d.]+) (MiB|GiB) per rank written in ([\d.]+) s, (\d+) MB/s", save)
    size, unit, write_s, mbs = m.groups()
mib = float(size) * (1024 if unit == "GiB" else 1)
# Step 4 runs while an async write is in flight; steps 2 and 5 have no save of their own.
quiet = sorted(step_s[s] for s in (2, 5) if s in step_s)
l = re.search(r"verified in ([\d.]+) s, read (\S+) (MiB|GiB) per rank in ([\d.]+) s", load)
# Verification reads every byte once (cold when the cache was dropped), then the owned ranges
# are read again: the load rate counts both against the bytes loaded.
load_s = float(l.group(1)) + float(l.group(4))
load_mb = float(l.group(2)) * (1024 if l.group(3) == "GiB" else 1) * 1048576 / 1e6
print(f"| {world} | {mode} | {mib:.0f} | {write_s} | {mbs} | {stall} | {quiet[len(quiet)//2]:.2f} | "
      f"{step_s.get(4, float('nan')):.2f} | {load_s:.2f} | {load_mb / load_s:.0f} | {cold} |")
PY
  done
done
