#!/usr/bin/env bash
# The GPU checks, run on the GPU machine from the repository root in one call (under 8
# minutes): unpacks .ztcarry/zt-device.tar.xz (scripts/pack-device.sh), finds the CUDA
# libraries of the image (NCCL's too: zt dlopens libnccl.so.2), prints the environment, runs
# the GPU tests (zt_tests --gtest_filter='Cuda*', the NCCL world-1 tests CudaNccl* among them),
# a short `zt train` with runtime.device: cuda and the kernel microbenchmarks (bench_cuda), and
# prints a summary table last.
# Logs go to $OUT (the folder the device tool brings back), or /tmp/zt-device-check.
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
  > "$out/nvidia-smi.txt" 2>&1
cat "$out/nvidia-smi.txt"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
row environment "$([[ -n "$gpu" ]] && echo ok || echo FAIL)" "${gpu:-no nvidia-smi}"

for b in zt zt_tests bench_cuda; do
  if ldd "$root/bin/$b" | grep -q 'not found'; then
    ldd "$root/bin/$b" | grep 'not found'
    row "libraries $b" FAIL "unresolved, see above"
  fi
done

"$root/bin/zt" --version 2>&1 | tee "$out/version.txt"
cuda_line=$(grep '^cuda:' "$out/version.txt")
row "zt --version" "$([[ "$cuda_line" =~ [1-9][0-9]*\ device ]] && echo ok || echo FAIL)" "$cuda_line"

# The GPU tests (5 minutes at most). The end-to-end ones (CudaTrain*) run the packed zt on
# this checkout's configs and corpus.
export ZT_TEST_BINARY="$root/bin/zt" ZT_TEST_SOURCE_DIR="$PWD"
timeout 300 "$root/bin/zt_tests" --gtest_filter='Cuda*' --gtest_output="xml:$out/cuda-tests.xml" \
  > "$out/cuda-tests.log" 2>&1
rc=$?
tail -40 "$out/cuda-tests.log"
passed=$(grep -c '^\[       OK \]' "$out/cuda-tests.log")
# gtest names failed and skipped tests twice (as they run and in the closing list).
failed=$(grep '^\[  FAILED  \] [A-Za-z]' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
skipped=$(grep '^\[  SKIPPED \] [A-Za-z]' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
row "gpu tests (Cuda*)" "$([[ $rc -eq 0 && $skipped -eq 0 ]] && echo ok || echo FAIL)" \
  "rc $rc, $passed passed, $failed failed, $skipped skipped"
# The NCCL world-1 collectives (f32, bf16) ran in that filter; their own row, as NCCL is new.
nccl_passed=$(grep -c '^\[       OK \] CudaNccl' "$out/cuda-tests.log")
nccl_failed=$(grep '^\[  FAILED  \] CudaNccl' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
nccl_skipped=$(grep '^\[  SKIPPED \] CudaNccl' "$out/cuda-tests.log" | awk '{print $4}' | sort -u | wc -l)
row "nccl world 1" "$([[ $nccl_passed -gt 0 && $nccl_failed -eq 0 && $nccl_skipped -eq 0 ]] && echo ok || echo FAIL)" \
  "$nccl_passed passed, $nccl_failed failed, $nccl_skipped skipped"

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

# Kernel microbenchmarks (2 minutes at most); ceilings: H200 bf16 GEMM ~790 TFLOP/s measured,
# FlashAttention-2 forward ~300 TFLOP/s (H100, D=64, T=1k), HBM ~4.3 TB/s.
timeout 120 "$root/bin/bench_cuda" > "$out/bench.txt" 2>&1
rc=$?
cat "$out/bench.txt"
while read -r name ms _unit value unit; do
  [[ "$_unit" == "ms" ]] || continue
  row "$name" "$([[ $rc -eq 0 ]] && echo ok || echo FAIL)" "$ms ms, $value $unit"
done < "$out/bench.txt"
[[ $rc -eq 0 ]] || row bench_cuda FAIL "rc $rc"

echo
echo "== summary (logs in $out) =="
printf '%-22s %-6s %s\n' check result detail
for r in "${rows[@]}"; do echo "$r"; done | tee "$out/summary.txt"
