#!/usr/bin/env bash
# On a fresh machine: install dependencies, build, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# Tests run one per core; each pins its own thread count.
ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 900
