"""Loads a directory written by `zt export` with Hugging Face transformers' AutoModelForCausalLM
and checks that its next-token loss on a text equals `zt eval`'s on the run it came from: the
same weights under transformers' own modeling code give the same logits, so the same loss
(fp32, to 1e-4 relative). scripts/device-check.sh runs it where torch and transformers exist.

  python3 scripts/hf_logits_check.py ZT_BINARY RUN_DIR EXPORT_DIR TEXT_FILE

TEXT_FILE holds one sample: T + 1 tokens for the run's tokenizer, T at most model.max_seq_len.
Prints one line and exits 0 when the losses agree, 1 when they do not.
"""
import json
import subprocess
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    zt, run_dir, export_dir, text_file = sys.argv[1:5]
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    ids = Tokenizer.from_file(f"{export_dir}/tokenizer.json").encode(text).ids
    T = len(ids) - 1
    out = subprocess.run([zt, "eval", run_dir, "--data", text_file, "--batches", "1", "--batch-size", "1",
                          "--seq-len", str(T), "--json"], capture_output=True, text=True, check=True)
    zt_eval = json.loads(out.stdout.strip().splitlines()[-1])
    model = AutoModelForCausalLM.from_pretrained(export_dir).float().eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits[0].double()
    hf_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).item()
    rel = abs(hf_loss - zt_eval["loss"]) / abs(zt_eval["loss"])
    ok = zt_eval["tokens"] == T and rel <= 1e-4
    print(f"{model.config.model_type}: transformers {hf_loss:.6f}, zt eval {zt_eval['loss']:.6f} over "
          f"{zt_eval['tokens']} tokens (relative difference {rel:.1e}): {'ok' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
