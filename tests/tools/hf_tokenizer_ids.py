#!/usr/bin/env python3
"""Ids and decoded text that Hugging Face `tokenizers` gives for texts, with tokenizer.json files.

    python hf_tokenizer_ids.py TEXTS.json OUT.json TOKENIZER.json...

TEXTS.json is a list of strings; OUT.json gets {tokenizer path: {"ids": [[...], ...],
"decoded": [...]}} (encode without post-processing; decode of those ids).
"""
import json
import sys

from tokenizers import Tokenizer


def main():
    texts = json.load(open(sys.argv[1], encoding="utf-8"))
    out = {}
    for path in sys.argv[3:]:
        tok = Tokenizer.from_file(path)
        ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
        out[path] = {"ids": ids, "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids]}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
