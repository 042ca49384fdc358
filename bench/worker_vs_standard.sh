#!/usr/bin/env bash
# The WorkerTransformer against a standard Transformer (both with gated attention) for the
# same wall-clock budget on this machine, at the document's shape: char-level tiny
# Shakespeare, T = 1024, dim 256, 4 layers, worker interval 4 (configs/worker-shakespeare.yaml,
# configs/standard-gated-shakespeare.yaml). Prints a markdown table: steps/s, tokens/s,
# params, val loss at equal time and at equal steps, and val loss at 40% of the budget.
#   bash bench/worker_vs_standard.sh [BUDGET_SECONDS]   (default 180: the probes, both runs
#   and their evaluations take about 10 minutes on 2 cores)
#
# A short probe run measures each model's steps/s; each then trains for budget x rate steps
# (its cosine schedule spans its own budget), evaluating every E steps, where E is a fifth of
# the standard model's steps, so both are evaluated at the same step counts (the standard at
# 20%, 40%, ... of its budget). Training time leaves the evaluations out: each evaluated
# step's time above the median step time.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/machine.sh
budget=${1:-180}
probe_steps=${PROBE_STEPS:-12}
zt=${ZT:-build/zt}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
std=configs/standard-gated-shakespeare.yaml
wrk=configs/worker-shakespeare.yaml
echo "machine: $(machine_line) at the start; budget ${budget} s per model; runs in $out" >&2

# steps/s of CONFIG over a probe run (the first step, which touches every buffer, left out).
rate() {
  "$zt" train "$1" --set run.out_dir="$out" --set run.name="probe-$2" --set train.steps="$probe_steps" \
    --set train.log_every=1 --set train.eval_every=0 > "$out/probe-$2.log" 2>&1
  python3 - "$out/probe-$2/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l]
print((rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]))
PY
}
r_std=$(rate "$std" standard)
r_wrk=$(rate "$wrk" worker)
read -r s_std every s_wrk < <(python3 -c "
b, rs, rw = $budget, $r_std, $r_wrk
e = max(1, int(b * rs / 5))
print(5 * e, e, max(e, round(b * rw / e) * e))")
echo "probe: standard $r_std steps/s -> $s_std steps; worker $r_wrk steps/s -> $s_wrk steps; eval every $every" >&2

# CPU seconds (user + system) of each run as well: on a shared machine the wall clock also
# counts other processes' time slices, the CPU time does not.
train() {
  /usr/bin/time -f "%U %S" -o "$out/$2.cpu" "$zt" train "$1" --set run.out_dir="$out" --set run.name="$2" --set train.steps="$3" \
    --set train.eval_every="$every" --set train.log_every=1 > "$out/$2.log" 2>&1
}
train "$std" standard "$s_std"
train "$wrk" worker "$s_wrk"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
p_std=$("$zt" plan "$std" | sed -n 's/.*, \([0-9]*\) params.*/\1/p')
p_wrk=$("$zt" plan "$wrk" | sed -n 's/.*, \([0-9]*\) params.*/\1/p')

python3 - "$out" "$p_std" "$p_wrk" <<'PY'
import json, sys
out, params = sys.argv[1], {"standard": int(sys.argv[2]), "worker": int(sys.argv[3])}
def load(name):
    rows = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"step"' in l]
    evals = {r["step"]: r for r in rows if "val_loss" in r}
    return rows, evals
runs = {n: load(n) for n in ("standard", "worker")}
common = min(max(e) for _, e in runs.values())  # the last step both evaluated
print("| model | params | steps | train time (s) | steps/s | tokens/s | CPU s/step | val loss, equal time | val loss @ step %d (equal steps) | val loss @ 40%% of the budget |" % common)
print("|---|---|---|---|---|---|---|---|---|---|")
def train_seconds(rows):
    # Step times from consecutive records; an evaluated step's excess over the median is eval.
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:])]
    if not times:
        return rows[-1]["elapsed_s"]
    med = sorted(times)[len(times) // 2]
    return rows[-1]["elapsed_s"] - sum(t - med for t, r in zip(times, rows[1:]) if "val_loss" in r and t > med)
speed, cpu = {}, {}
for n, (rows, evals) in runs.items():
    steps, secs = rows[-1]["step"], train_seconds(rows)
    speed[n] = steps / secs
    # The whole run's CPU time (evaluations and start-up included) per step.
    cpu[n] = sum(map(float, open(f"{out}/{n}.cpu").read().split()[-2:])) / steps
    tok_per_step = rows[-1]["tokens"] / steps
    # The evaluation nearest 40% of this run's training steps (time is spent evenly per step).
    at40 = min(evals, key=lambda s: abs(s - 0.4 * steps))
    print(f"| {n} | {params[n]/1e6:.2f}M | {steps} | {secs:.0f} | {steps/secs:.2f} | {steps*tok_per_step/secs:,.0f} | {cpu[n]:.2f} | "
          f"{evals[steps]['val_loss']:.4f} | {evals[common]['val_loss']:.4f} | "
          f"{evals[at40]['val_loss']:.4f} (step {at40}) |")
print(f"\nworker / standard steps/s: {speed['worker'] / speed['standard']:.2f}x wall clock, "
      f"{cpu['standard'] / cpu['worker']:.2f}x per CPU second")
PY
