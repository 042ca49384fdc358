#!/usr/bin/env python3
"""Makes small BPE tokenizer files and the ids the reference libraries give for a test corpus.

    python bpe_reference.py OUT_DIR [--vocab N] [--train FILE ...]

Trains byte-level BPE models with Hugging Face `tokenizers` (BpeTrainer) on tinyshakespeare
plus the corpus below, and writes to OUT_DIR:
  gpt2.tokenizer.json       ByteLevel pre-tokenizer (GPT-2 regex), merges as [a, b] lists
  gpt2-strmerges.tokenizer.json   the same with merges as "a b" strings (the older form)
  gpt2/vocab.json, gpt2/merges.txt GPT-2's own two-file form of the same model
  llama3.tokenizer.json     Split(Llama 3 regex) + ByteLevel, ignore_merges true
  qwen2.tokenizer.json      Split(Qwen2 regex) + ByteLevel
  qwen2-nfc.tokenizer.json  the same trained with Qwen2's NFC normalizer
  qwen2-nfc-seq.tokenizer.json   its normalizer written as a Sequence holding NFC
  test.tiktoken             the gpt2 model's ranks as a tiktoken file (cl100k pattern)
  expected.json             {"texts": [...], "ids": {file: [[ids of text i], ...]}}
The ids come from tokenizers (encode without post-processing) and tiktoken (encode_ordinary),
so a test comparing with them checks against the libraries, not against zerotrain.
"""
import argparse
import base64
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
import tiktoken

GPT2_REGEX = None  # ByteLevel(use_regex=True) carries it
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
              r"""|\s*[\r\n]|\s+(?!\S)|\s+""")
SPECIAL = ["<|endoftext|>", "<|im_start|>"]

CORPUS = [
    "Hello world! It's a test. I'm here, you're there; we've, they'll, she'd.",
    "DON'T WON'T IT'S WE'RE YOU'VE I'M THEY'LL HE'D 'S 'T 'Re 'vE 'lL",
    "Ünïcödé àccents: café, naïve, Zürich, São Paulo, Ελληνικά κείμενα, Русский текст.",
    "CJK: 日本語のテキスト、中文文本，한국어 텍스트。",
    "Emoji: 😀👍🏽🎉 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ❤️",
    "a  b   c    d\t\te\n\n\nf \n g   \n\n  h  ",
    "line1\r\nline2\r\n\r\n\n\nline3\n",
    "1234567890 12 345 3.14159 1,000,000 ²³ ½ ٣٤٥ ⅷ 0x1F",
    "!!! ??? ... --- ''' \"quoted\" (parens) [brackets] {braces} <|endoftext|> after <|im_start|>x",
    "a" * 300 + " " + "ab" * 80,
    " " * 100 + "x" + "\n" * 20 + "y" + " \t " * 10,
    "  leading spaces and trailing\n",
    "ABC123def 4567x y8 _under_score__ $100 #tag @user e-mail: a.b@c.de",
    "a\u00a0b\u3000c\u2003d\u2028e\u0085f",
    "e\u0301 n\u0303 zero\u200bwidth join\u200dx",
    "'s's 'S 'll'll don't", "x'", "'", " ", "\n", "",
    # NFC: decomposed accents, singletons (Angstrom and Ohm signs), Hangul jamo that compose,
    # composition exclusions (U+0958, U+2ADC), non-starter decompositions (U+0344, U+0F73),
    # canonical ordering and blocked marks.
    "Cafe\u0301 nai\u0308ve e\u0301te\u0301 A\u030Angstro\u0308m \u212B \u2126 re\u0301sume\u0301 Cafe\u0301",
    "\u1100\u1161\u11A8 \u1112\u1161\u11AB\u1100\u1173\u11AF \uAC00\u11A8 \u1100\u1161 \u1161\u11A8 \ud55c\uad6d\uc5b4",
    "\u0958 \u0915\u093C \u2ADC \u0344 \u0F73 a\u0301\u0301 \u0301a >\u0338 e\u0302\u0323 a\u0328\u0301 a\u0301\u0328 \U0001D15E",
]


def byte_level_bytes(token):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    inv = {chr(c): b for b, c in zip(bs, cs)}
    return bytes(inv[ch] for ch in token)


def train(pre_tokenizer, texts, vocab_size, normalizer=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def split_then_bytes(regex):
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(regex), behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--train", nargs="*", default=[])
    ap.add_argument("--only-gpt2", action="store_true", help="train only the GPT-2 style model (benchmarks)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    texts = []
    for path in a.train:
        with open(path, encoding="utf-8") as f:
            texts.extend(f.read().split("\n\n"))
    texts += CORPUS * 3

    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), texts, a.vocab)
    files = {"gpt2.tokenizer.json": gpt2}
    if not a.only_gpt2:
        llama3 = train(split_then_bytes(LLAMA3_REGEX), texts, a.vocab)
        qwen2 = train(split_then_bytes(QWEN2_REGEX), texts, a.vocab)
        qwen2_nfc = train(split_then_bytes(QWEN2_REGEX), texts, a.vocab, normalizers.NFC())
        files.update({"llama3.tokenizer.json": llama3, "qwen2.tokenizer.json": qwen2,
                      "qwen2-nfc.tokenizer.json": qwen2_nfc})
    for name, tok in files.items():
        tok.save(os.path.join(a.out, name))
    ids = {}
    if not a.only_gpt2:
        # Llama 3 sets ignore_merges: a piece that is a token is taken whole.
        path = os.path.join(a.out, "llama3.tokenizer.json")
        j = json.load(open(path, encoding="utf-8"))
        j["model"]["ignore_merges"] = True
        json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        files["llama3.tokenizer.json"] = Tokenizer.from_file(path)
        # The older merges form, "a b" strings.
        j = json.load(open(os.path.join(a.out, "gpt2.tokenizer.json"), encoding="utf-8"))
        j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
        path = os.path.join(a.out, "gpt2-strmerges.tokenizer.json")
        json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        files["gpt2-strmerges.tokenizer.json"] = Tokenizer.from_file(path)
        j = json.load(open(os.path.join(a.out, "qwen2-nfc.tokenizer.json"), encoding="utf-8"))
        assert j["normalizer"] == {"type": "NFC"}, j["normalizer"]
        j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
        path = os.path.join(a.out, "qwen2-nfc-seq.tokenizer.json")
        json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        files["qwen2-nfc-seq.tokenizer.json"] = Tokenizer.from_file(path)
    for name, tok in files.items():
        ids[name] = [tok.encode(t, add_special_tokens=False).ids for t in CORPUS]

    # GPT-2's vocab.json + merges.txt, read back by the library the way GPT-2 files are.
    os.makedirs(os.path.join(a.out, "gpt2"), exist_ok=True)
    gpt2.model.save(os.path.join(a.out, "gpt2"))
    two_file = Tokenizer(models.BPE.from_file(os.path.join(a.out, "gpt2", "vocab.json"),
                                              os.path.join(a.out, "gpt2", "merges.txt")))
    two_file.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    ids["gpt2/vocab.json"] = [two_file.encode(t, add_special_tokens=False).ids for t in CORPUS]

    # tiktoken: the gpt2 model's regular tokens as ranks (special tokens are not part of a .tiktoken file).
    ranks = {byte_level_bytes(t): i for t, i in gpt2.get_vocab().items() if t not in SPECIAL}
    with open(os.path.join(a.out, "test.tiktoken"), "w") as f:
        for tok_bytes, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(f"{base64.b64encode(tok_bytes).decode()} {rank}\n")
    enc = tiktoken.Encoding(name="test", pat_str=CL100K_PAT, mergeable_ranks=ranks, special_tokens={})
    ids["test.tiktoken"] = [enc.encode_ordinary(t) for t in CORPUS]

    with open(os.path.join(a.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"texts": CORPUS, "ids": ids}, f, ensure_ascii=False)
    print(f"bpe_reference: wrote {len(ids)} tokenizers' ids for {len(CORPUS)} texts to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
