#!/usr/bin/env bash
# Sanitizer builds and their test runs (CI runs the address one; see README "Testing").
#   scripts/sanitize.sh address   ASan + UBSan build in build-asan/: the whole test suite
#   scripts/sanitize.sh thread    TSan build in build-tsan/: the multi-threaded and
#                                 multi-process tests (comm thread, async checkpoints, launcher,
#                                 profiler, preemption signals)
# Only zt, zt_tests and zt_comm_check are built. The tests start zt, mpirun and zt launch
# workers: every process writes its reports to build-*/sanitizer-logs/, and any file there
# fails the run, also from a process whose exit status no test looks at.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread}
case "$kind" in
  address) dir=build-asan; sanitize=address,undefined ;;
  thread) dir=build-tsan; sanitize=thread ;;
  *) echo "usage: scripts/sanitize.sh address|thread" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DZT_SANITIZE="$sanitize" -DZT_BUILD_BENCH=OFF > /dev/null
cmake --build "$dir" -j"$(nproc)" --target zt zt_tests zt_comm_check

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
  # TSan slows code 5-15x: the tests that start threads or processes only.
  ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure --timeout 1800 \
    -R '^(CheckpointFaults|CheckpointResume|CheckpointManager|EngineRoundTrip|CliTrain|Launch|CommGloo|CommMpi|CommSingle|CommBf16|Store|Profiler|ProfiledRun|Runtime)\.' \
    || status=$?
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
