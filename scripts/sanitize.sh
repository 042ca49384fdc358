#!/usr/bin/env bash
# Sanitizer builds and their test runs (CI runs both; see README "Testing").
#   scripts/sanitize.sh address [--build-only]
#       clang ASan + UBSan build in build-asan/: the whole test suite. The same build carries
#       libFuzzer's coverage instrumentation and the harnesses, so scripts/fuzz.sh reuses it
#       (one build of the library serves both; the coverage costs the suite little).
#   scripts/sanitize.sh thread [--build-only]
#       TSan build (gcc) in build-tsan/: the multi-threaded and multi-process tests (comm
#       thread, async checkpoints, launcher, profiler, preemption signals).
# Only zt, zt_tests and the two per-rank check programs (and the fuzzers) are built, without CUDA. The tests
# start zt, mpirun and zt launch workers: every process writes its reports to
# build-*/sanitizer-logs/, and any file there fails the run, also from a process whose exit
# status no test looks at.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/sanitize.sh address|thread [--build-only]"
kind=${1:?$usage}
build_only=${2:-}
[ -z "$build_only" ] || [ "$build_only" = --build-only ] || { echo "$usage" >&2; exit 2; }
case "$kind" in
  address)
    dir=build-asan
    configure=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DZT_FUZZ=ON -DZT_SANITIZE=address,undefined)
    targets=(zt zt_tests zt_comm_check zt_nccl_bootstrap_check fuzzers) ;;
  thread)
    dir=build-tsan
    configure=(-DZT_SANITIZE=thread)
    targets=(zt zt_tests zt_comm_check zt_nccl_bootstrap_check) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DZT_BUILD_BENCH=OFF -DZT_CUDA=OFF \
  "${configure[@]}" "${launcher[@]}" > /dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"
[ -z "$build_only" ] || exit 0

logs="$PWD/$dir/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
supp="$PWD/scripts/sanitizers"
# The slow unwinder: OpenMPI's libraries have no frame pointers, and without it their leaks'
# stacks stop at an unknown module that no suppression can name.
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="log_path=$logs/tsan:suppressions=$supp/tsan.supp:print_suppressions=0:second_deadlock_stack=1"

status=0
if [ "$kind" = address ]; then
  # The kernel tests' copies for lower ISAs (labels isa-*) run the same driver code: once here.
  ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure --timeout 1800 -LE '^isa-' || status=$?
else
  # The TSan build holds the threaded and multi-process tests only (CMakeLists.txt).
  ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure --timeout 1800 || status=$?
fi
if compgen -G "$logs/*" > /dev/null; then
  echo "sanitize.sh: sanitizer reports in $logs:" >&2
  for f in "$logs"/*; do
    echo "==== $f" >&2
    head -n 60 "$f" >&2
  done
  status=1
fi
exit "$status"
