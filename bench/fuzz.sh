#!/usr/bin/env bash
# The fuzzers for longer than CI does: SECONDS per harness (default 900), nproc at a time,
# continuing from the corpus earlier runs left in build-asan/fuzz-corpus/. Prints executions and
# coverage per harness (docs/testing.md records them).
#   bench/fuzz.sh [SECONDS] [NAME...]
#   RUNS=1000000 bench/fuzz.sh 3600         until a million executions each (at most an hour)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-900}
shift || true
exec bash scripts/fuzz.sh "$seconds" "$@"
