#!/usr/bin/env bash
# The MoE model of configs/tiny-moe.yaml (4 experts of d_ff 352, top 2, one shared expert)
# against the dense llama of equal ACTIVE parameters: the same model with one SwiGLU of
# d_ff = (top_k + shared) x 352 = 1056 (the router's 4 x 256 and the shared gate's 256 weights
# per layer are the only active weights the dense model lacks). Times forward + backward +
# optimizer steps with bench_step on random tokens, alternating the two models ROUNDS times so
# that load from other jobs on a shared machine hits both alike; prints tokens/s of each
# round and the ratio of MoE to dense time per token (median over rounds).
#   bash bench/moe_vs_dense.sh [ROUNDS] [--set k=v ...]   (default 3 rounds, about a minute on 2 cores)
#   THREADS=1 bash bench/moe_vs_dense.sh   (OpenMP threads per run; default: the config's, all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/machine.sh
rounds=${1:-3}
shift || true
bench=${BENCH:-build/bench/bench_step}
[ -x "$bench" ] || bench=build/bench_step
moe=configs/tiny-moe.yaml
echo "machine: $(machine_line)" >&2
threads=()
[ -n "${THREADS:-}" ] && threads=(--set parallel.threads="$THREADS")
tok() { "$bench" "$moe" --steps "${STEPS:-4}" --warmup 1 "${threads[@]}" "$@" | awk '/^tokens\/s/ {print $2}'; }
ratios=()
for r in $(seq "$rounds"); do
  m=$(tok "$@")
  d=$(tok --set model.moe.n_experts=0 --set model.d_ff=1056 "$@")
  ratio=$(python3 -c "print(f'{$d / $m:.3f}')")
  ratios+=("$ratio")
  echo "round $r: MoE $m tok/s, dense (equal active) $d tok/s, MoE time per token / dense: $ratio"
done
joined=$(IFS=,; echo "${ratios[*]}")
python3 -c "import statistics; print('median MoE / dense time per token:', statistics.median([$joined]))"
