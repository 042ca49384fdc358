#!/usr/bin/env bash
# GPT-2-style BPE encode speed: trains a byte-level BPE with GPT-2's vocabulary size (50257)
# and pre-tokenizer on tinyshakespeare with Hugging Face tokenizers (the .venv that
# scripts/install-deps.sh makes), then runs build/bench/bench_tokenizer on it.
#
#   bash bench/tokenizer.sh [TEXT=data/tinyshakespeare.txt]
set -euo pipefail
cd "$(dirname "$0")/.."
text=${1:-data/tinyshakespeare.txt}
out=build/bench/bpe-50k
[ -f "$out/gpt2.tokenizer.json" ] ||
  .venv/bin/python3 tests/tools/bpe_reference.py "$out" --vocab 50257 --only-gpt2 --train data/tinyshakespeare.txt
lscpu | grep -m1 'Model name' || true
./build/bench/bench_tokenizer "$out/gpt2.tokenizer.json" "$text"
