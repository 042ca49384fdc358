#!/usr/bin/env bash
# The GPU checks, run on the GPU machine from the repository root in one call (about 5 minutes,
# 8 at most): unpacks .ztcarry/zt-device.tar.xz (scripts/pack-device.sh), finds the CUDA
# libraries of the image (NCCL's too: zt dlopens libnccl.so.2), then
#   - the GPU tests (zt_tests Cuda*, one suite per process, 90 s each; the NCCL world-1 tests
#     CudaNccl* among them), and the attention and training tests again with the plain
#     attention kernels (ZT_CUDA_ATTENTION=plain; bf16 takes the tensor cores by default),
#     and the linear, plan and training tests with misaligned linear outputs written through
#     aligned chunks (ZT_CUDA_LINEAR_OUT=aligned, opt-in until checked here);
#   - a tiny run of each family exported and loaded by transformers' AutoModelForCausalLM
#     (scripts/hf_logits_check.py: its loss equals zt eval's);
#   - a short `zt train` of tiny-llama on the GPU;
#   - the measured ceilings (bf16 GEMM, copy bandwidth, through PyTorch) and the kernel
#     microbenchmarks (bench_cuda, plain and tensor-core attention);
#   - GPT-2 124M bf16 at T=1024: zt (both attentions, and aligned linear outputs) against
#     PyTorch with torch.compile (bench/pytorch_gpt2_step.py), and Nsight Compute's
#     per-kernel times of two zt steps;
# and prints a summary table last. At most 8 logs go to $OUT (the folder the device tool brings
# back), or /tmp/zt-device-check.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out=${OUT:-/tmp/zt-device-check}
mkdir -p "$out"
pack=.ztcarry/zt-device.tar.xz
declare -a rows=()
row() { rows+=("$(printf '%-22s %-6s %s' "$1" "$2" "$3")"); }

if [[ ! -f "$pack" ]]; then
  echo "device-check: $pack is missing: run scripts/pack-device.sh here and carry .ztcarry" >&2
  exit 2
fi
work=$(mktemp -d)
tar -C "$work" -xJf "$pack"
root="$work/zt-device"
cat "$root/MANIFEST"

# The image's CUDA libraries: the toolkit, the loader cache, or PyTorch's nvidia wheels.
cuda_dirs=()
for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libnccl.so.2; do
  found=""
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    if [[ -e "$dir/$lib" ]]; then found="$dir/$lib"; break; fi
  done
  if [[ -z "$found" ]]; then
    found=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
  fi
  if [[ -z "$found" ]]; then
    found=$(find / -xdev -name "$lib" -path '*nvidia*' 2>/dev/null | head -1)
  fi
  echo "cuda library $lib: ${found:-NOT FOUND}"
  [[ -n "$found" ]] && cuda_dirs+=("$(dirname "$found")")
done
ld_path="$root/lib"
for d in "${cuda_dirs[@]}"; do ld_path="$ld_path:$d"; done
export LD_LIBRARY_PATH="$ld_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } \
  > "$out/env.txt" 2>&1
cat "$out/env.txt"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
row environment "$([[ -n "$gpu" ]] && echo ok || echo FAIL)" "${gpu:-no nvidia-smi}"

for b in zt zt_tests bench_cuda; do
  if ldd "$root/bin/$b" | grep -q 'not found'; then
    ldd "$root/bin/$b" | grep 'not found'
    row "libraries $b" FAIL "unresolved, see above"
  fi
done

"$root/bin/zt" --version > "$out/version.tmp" 2>&1
cat "$out/version.tmp" | tee -a "$out/env.txt"
cuda_line=$(grep '^cuda:' "$out/version.tmp")
rm -f "$out/version.tmp"
row "zt --version" "$([[ "$cuda_line" =~ [1-9][0-9]*\ device ]] && echo ok || echo FAIL)" "$cuda_line"

# PyTorch's compile cache warms in the background while the tests run (CPU work mostly), so
# the timed reference at the end spends its time on the GPU, not in Inductor.
python=${PYTHON:-python3}
pt_shape=(--device cuda --dtype bf16 --batch 16 --seq 1024)
( timeout 240 "$python" bench/pytorch_gpt2_step.py "${pt_shape[@]}" --compile --steps 1 --warmup 1 \
    > "$out/pytorch.log" 2>&1 ) &
pt_warm=$!

# The GPU tests, one suite per process with its own time limit, so that one hang costs 90 s
# and not the rest. The end-to-end ones (CudaTrain*) run the packed zt on this checkout's
# configs and corpus.
export ZT_TEST_BINARY="$root/bin/zt" ZT_TEST_SOURCE_DIR="$PWD"
suites=$("$root/bin/zt_tests" --gtest_list_tests --gtest_filter='Cuda*' | sed -n 's/^\([A-Za-z0-9_/]*\)\.$/\1/p')
: > "$out/cuda-tests.log"
timeouts=()
tests_start=$SECONDS
for suite in $suites; do
  # Four minutes for all of them: the suites left after that are named, not run.
  if (( SECONDS - tests_start > 240 )); then timeouts+=("$suite(not-run)"); continue; fi
  timeout 90 "$root/bin/zt_tests" --gtest_filter="$suite.*" >> "$out/cuda-tests.log" 2>&1
  rc=$?
  [[ $rc -eq 124 ]] && { timeouts+=("$suite"); echo "[  TIMEOUT ] $suite (90 s)" >> "$out/cuda-tests.log"; }
done
grep -E '^\[  (FAILED|SKIPPED|TIMEOUT) |Failure|error' "$out/cuda-tests.log" | head -60
passed=$(grep -c '^\[       OK \]' "$out/cuda-tests.log")
# gtest names failed and skipped tests twice (as they run and in the closing list).
failed=$(grep '^\[  FAILED  \] [A-Za-z]' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
skipped=$(grep '^\[  SKIPPED \] [A-Za-z]' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
row "gpu tests (Cuda*)" "$([[ $passed -gt 0 && $failed -eq 0 && $skipped -eq 0 && ${#timeouts[@]} -eq 0 ]] && echo ok || echo FAIL)" \
  "$passed passed, $failed failed, $skipped skipped, ${#timeouts[@]} suites timed out ${timeouts[*]}"
for t in $(grep '^\[  FAILED  \] [A-Za-z]' "$out/cuda-tests.log" | awk '{print $4}' | sort -u); do
  row "  failed" "" "$t"
done
# The NCCL world-1 collectives (f32, bf16) ran among them; their own row, as NCCL is new.
nccl_passed=$(grep -c '^\[       OK \] CudaNccl' "$out/cuda-tests.log")
nccl_failed=$(grep '^\[  FAILED  \] CudaNccl' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
nccl_skipped=$(grep '^\[  SKIPPED \] CudaNccl' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
row "nccl world 1" "$([[ $nccl_passed -gt 0 && $nccl_failed -eq 0 && $nccl_skipped -eq 0 ]] && echo ok || echo FAIL)" \
  "$nccl_passed passed, $nccl_failed failed, $nccl_skipped skipped"

# rerun ROW VAR=VALUE FILTER WHAT: the tests FILTER again with one switch set (2 minutes at
# most), a row from their results, their log appended to cuda-tests.log.
rerun() {
  local name=$1 setting=$2 filter=$3 what=$4 log="$out/cuda-tests-rerun.log" rc passed failed
  env "$setting" timeout 120 "$root/bin/zt_tests" --gtest_filter="$filter" > "$log" 2>&1
  rc=$?
  grep -E '^\[  (FAILED|SKIPPED) |Failure' "$log" | head -20
  passed=$(grep -c '^\[       OK \]' "$log")
  failed=$(grep '^\[  FAILED  \] [A-Za-z]' "$log" | awk '{print $4}' | sort -u | wc -l)
  row "$name" "$([[ $rc -eq 0 && $passed -gt 0 ]] && echo ok || echo FAIL)" \
    "rc $rc, $passed passed, $failed failed ($what, $setting)"
  cat "$log" >> "$out/cuda-tests.log"
  rm -f "$log"
}
# bf16 attention takes the tensor cores by default: the attention and training tests again
# on the plain kernels (CudaAttentionTensorCores sets tensor_cores for itself in both runs),
# so that both stay checked.
rerun "plain attention" ZT_CUDA_ATTENTION=plain 'Cuda*Attention*:Cuda*Train*' "attention and training tests"
# Misaligned linear outputs (the head's 50257 floats per row) through aligned chunks: opt-in
# until checked here; the linear, plan and training tests on it.
rerun "aligned linear out" ZT_CUDA_LINEAR_OUT=aligned 'CudaLinear*:CudaPlan*:Cuda*Train*' \
  "linear, plan and training tests"

# Hugging Face interop (on the CPU, half a minute): a tiny run of each family exported with
# `zt export` and loaded by transformers' AutoModelForCausalLM gives zt eval's loss on a
# 16-token sample (scripts/hf_logits_check.py).
: > "$out/hf-check.log"
head -c 17 data/tinyshakespeare.txt > "$work/sample.txt"
for family in gpt2 llama; do
  run="$work/runs/hf-$family"
  { "$root/bin/zt" train "configs/test-tiny-$family.yaml" --set train.steps=30 --set run.out_dir="$work/runs" \
      --set run.name="hf-$family" --set parallel.threads=4 > /dev/null &&
    "$root/bin/zt" export "$run" -o "$work/hf-$family/" &&
    timeout 60 "$python" scripts/hf_logits_check.py "$root/bin/zt" "$run" "$work/hf-$family" "$work/sample.txt"; } \
    >> "$out/hf-check.log" 2>&1
  rc=$?
  line=$(grep -E ': transformers ' "$out/hf-check.log" | tail -1)
  row "transformers $family" "$([[ $rc -eq 0 ]] && echo ok || echo FAIL)" "rc $rc, ${line:-see env.txt}"
done
tail -4 "$out/hf-check.log"
{ echo "== Hugging Face interop"; cat "$out/hf-check.log"; } >> "$out/env.txt"  # 8 files come back at most
rm -f "$out/hf-check.log"

# One short training run on the GPU (1 minute at most): tiny-llama (4 layers, d_model 256),
# 60 steps of 16 x 128 tokens; its closing line gives the tokens per second.
timeout 60 "$root/bin/zt" train configs/tiny-llama.yaml --set runtime.device=cuda --set train.steps=60 \
  --set train.eval_every=0 --set run.out_dir="$work/runs" > "$out/train-cuda.log" 2>&1
rc=$?
head -2 "$out/train-cuda.log"
tail -3 "$out/train-cuda.log"
done_line=$(grep 'done: ' "$out/train-cuda.log" | tail -1)
tok_s=$(sed -n 's/.*(\([0-9.]*[kMG]\{0,1\}\) tok\/s).*/\1/p' <<< "$done_line")
final=$(sed -n 's/.*final loss \([0-9.]*\).*/\1/p' <<< "$done_line")
row "zt train tiny-llama" "$([[ $rc -eq 0 && -n "$tok_s" ]] && echo ok || echo FAIL)" \
  "rc $rc, ${tok_s:-?} tok/s, final loss ${final:-?} (cuda, fp32, 60 steps)"

# The GPU to itself from here on: the timings below are the ceilings and the benchmarks.
wait "$pt_warm"
"$python" - > "$out/peak.txt" 2>&1 <<'PY'
import torch
def ms(f, n=10):
    for _ in range(3): f()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): f()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
t = ms(lambda: a @ b)
print(f"peak_bf16_gemm_8192 {t:.3f} ms {2 * 8192**3 / t / 1e9:.1f} TFLOP/s")
x = torch.empty(2**30, device="cuda", dtype=torch.uint8); y = torch.empty_like(x)
t = ms(lambda: y.copy_(x))
print(f"peak_copy_1GiB {t:.3f} ms {2 * 2**30 / t / 1e9:.2f} TB/s")
PY
cat "$out/peak.txt" | tee -a "$out/env.txt"
while read -r name ms _unit value unit; do
  [[ "$_unit" == "ms" ]] && row "$name" ok "$ms ms, $value $unit"
done < "$out/peak.txt"
rm -f "$out/peak.txt"

# Kernel microbenchmarks (2 minutes at most); ceilings: H200 bf16 GEMM ~790 TFLOP/s measured,
# FlashAttention-2 forward ~300 TFLOP/s (H100, D=64, T=1k), HBM ~4.3 TB/s.
: > "$out/bench.txt"
for attention in plain tensor_cores; do
  echo "== ZT_CUDA_ATTENTION=$attention" >> "$out/bench.txt"
  ZT_CUDA_ATTENTION=$attention timeout 60 "$root/bin/bench_cuda" > "$out/bench-one.txt" 2>&1
  rc=$?
  cat "$out/bench-one.txt" | tee -a "$out/bench.txt"
  while read -r name ms _unit value unit; do
    [[ "$_unit" == "ms" ]] || continue
    [[ "$name" == attention* ]] && name="$name/$attention"
    [[ "$name" != attention* && "$attention" != plain ]] && continue  # the rest does not depend on it
    row "$name" "$([[ $rc -eq 0 ]] && echo ok || echo FAIL)" "$ms ms, $value $unit"
  done < "$out/bench-one.txt"
  [[ $rc -eq 0 ]] || row "bench_cuda $attention" FAIL "rc $rc"
done
rm -f "$out/bench-one.txt"

# GPT-2 124M, bf16, T=1024, micro-batch 16: zt (plain and tensor-core attention, then the
# latter with aligned linear outputs) against PyTorch with torch.compile on the same GPU
# (3.5 minutes at most; about 1.5). Tokens per second from zt's last step line; MFU against the
# ~790 TFLOP/s measured bf16 GEMM peak, counting 6N + 6·L·T·d FLOPs per token as zt does.
: > "$out/train-124m.log"
for variant in plain tensor_cores tensor_cores+aligned; do
  attention=${variant%+aligned}
  linear_out=direct
  [[ $variant == *+aligned ]] && linear_out=aligned
  ZT_CUDA_ATTENTION=$attention ZT_CUDA_LINEAR_OUT=$linear_out timeout 100 "$root/bin/zt" train configs/gpt2-124m.yaml --set runtime.device=cuda \
    --set precision.compute=bf16 --set data.seq_len=1024 --set train.micro_batch=16 --set train.steps=15 \
    --set train.eval_every=0 --set run.out_dir="$work/runs" --set run.name="gpt2-124m-${variant/+/-}" \
    > "$out/train-one.log" 2>&1
  rc=$?
  { echo "== ZT_CUDA_ATTENTION=$attention ZT_CUDA_LINEAR_OUT=$linear_out"; cat "$out/train-one.log"; } >> "$out/train-124m.log"
  tail -3 "$out/train-one.log"
  last=$(grep -E 'step +1[0-9]/' "$out/train-one.log" | tail -1)
  zt_tok=$(sed -n 's/.*| \([0-9.]*[kM]\{0,1\}\) tok\/s |.*/\1/p' <<< "$last")
  zt_gf=$(sed -n 's/.*| \([0-9.]*\) GFLOP\/s |.*/\1/p' <<< "$last")
  zt_loss=$(sed -n 's/.*| loss \([0-9.]*\) |.*/\1/p' <<< "$last")
  row "zt 124M bf16 $variant" "$([[ $rc -eq 0 && -n "$zt_tok" ]] && echo ok || echo FAIL)" \
    "rc $rc, ${zt_tok:-?} tok/s, ${zt_gf:-?} GFLOP/s, loss ${zt_loss:-?} (T1024 B16, step 10+)"
done
rm -f "$out/train-one.log"
timeout 150 "$python" bench/pytorch_gpt2_step.py "${pt_shape[@]}" --compile --steps 8 --warmup 3 \
  >> "$out/pytorch.log" 2>&1
rc=$?
tail -3 "$out/pytorch.log"
pt_line=$(grep '^pytorch ' "$out/pytorch.log" | tail -1)
row "torch.compile 124M" "$([[ $rc -eq 0 && -n "$pt_line" ]] && echo ok || echo FAIL)" "rc $rc, ${pt_line:-see pytorch.log}"

# Per-kernel GPU time of two 124M steps (Nsight Compute's gpu__time_duration, each kernel
# replayed alone; 100 s at most), summed by kernel in ncu.txt: where the step's time goes.
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [[ -n "$ncu" ]]; then
  timeout 100 "$ncu" --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
    "$root/bin/zt" train configs/gpt2-124m.yaml --set runtime.device=cuda --set precision.compute=bf16 \
    --set data.seq_len=1024 --set train.micro_batch=16 --set train.steps=2 --set train.eval_every=0 \
    --set run.out_dir="$work/runs" --set run.name=gpt2-124m-ncu > "$out/ncu.txt" 2>&1
  rc=$?
  row "ncu per-kernel 124M" "$([[ $rc -eq 0 ]] && echo ok || echo FAIL)" "rc $rc, see ncu.txt"
else
  row "ncu per-kernel 124M" FAIL "ncu not found"
fi

echo
echo "== summary (logs in $out) =="
printf '%-22s %-6s %s\n' check result detail
for r in "${rows[@]}"; do echo "$r"; done | tee "$out/summary.txt"
