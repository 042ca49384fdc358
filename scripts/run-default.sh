#!/usr/bin/env bash
# On a fresh machine: install dependencies, build, train the default job (a character-level
# GPT on tiny Shakespeare) and print text sampled from the trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh zt  # zt alone: the tests and benchmarks are what scripts/test.sh builds
./build/zt train configs/shakespeare-char.yaml "$@"
./build/zt generate runs/shakespeare-char --prompt "ROMEO:" --tokens 400 --temperature 0.8 --top-k 40
