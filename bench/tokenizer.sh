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
source bench/machine.sh
echo "machine: $(machine_line)"
./build/bench/bench_tokenizer "$out/gpt2.tokenizer.json" "$text"

# The reference libraries on the same text and thread count, for scale.
RAYON_NUM_THREADS=1 .venv/bin/python3 - "$out/gpt2.tokenizer.json" "$text" <<'PY'
import sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8").read()
mb = len(text.encode()) / 1e6
# Paragraph by paragraph: one call on a whole file is far slower in tokenizers (offsets of every token).
paragraphs = [p + "\n\n" for p in text.split("\n\n")]
best = 0
for _ in range(5):
    t = time.perf_counter()
    for p in paragraphs:
        tok.encode(p, add_special_tokens=False)
    best = max(best, mb / (time.perf_counter() - t))
print(f"Hugging Face tokenizers, 1 thread, per paragraph: {best:.1f} MB/s (best of 5)")
PY
