#!/usr/bin/env python3
"""Strings and their NFC from Python's unicodedata, for the NFC unit test.

    python nfc_reference.py OUT.json

Writes {"unicode": version, "cases": [[text, nfc], ...]}: every code point that has a canonical
decomposition or a non-zero combining class, alone, decomposed, and followed by marks; Hangul
syllables and jamo sequences; composition exclusions; and seeded random mixes of letters and
marks in every order.
"""
import json
import random
import sys
import unicodedata


def main():
    cases = []
    special = [cp for cp in range(0x110000)
               if unicodedata.combining(chr(cp)) or
               (unicodedata.decomposition(chr(cp)) and not unicodedata.decomposition(chr(cp)).startswith("<"))]
    for cp in special:
        c = chr(cp)
        for text in (c, unicodedata.normalize("NFD", c), "a" + c + "\u0301\u0323", c + "\u0327\u0300", "\u0301" + c):
            cases.append(text)
    # Hangul: syllables, L V, L V T, LV T, and jamo that do not combine.
    rng = random.Random(15)
    for _ in range(500):
        L, V, T = 0x1100 + rng.randrange(19), 0x1161 + rng.randrange(21), 0x11A8 + rng.randrange(27)
        s = chr(0xAC00 + rng.randrange(11172))
        cases += [chr(L) + chr(V), chr(L) + chr(V) + chr(T), s + chr(T), chr(V) + chr(T), chr(L) + "\u0301" + chr(V)]
    # Random mixes: base letters (some composing), marks of several classes, stable text.
    pool = list("aeiouAEOUnNcsz >=<") + [chr(x) for x in (0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x323, 0x327,
                                                          0x328, 0x338, 0x345, 0x3B1, 0x3C9, 0x1100, 0x1161, 0x11A8,
                                                          0x915, 0x93C, 0xE9, 0x212B, 0x2126, 0x344, 0xF73, 0x1E0B)]
    for _ in range(4000):
        cases.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 9))))
    cases += ["", "plain ascii", "caf\u00e9 na\u00efve", "line\n\u0301after newline", "\U0001D15E\U0001D165"]
    out = {"unicode": unicodedata.unidata_version, "cases": [[t, unicodedata.normalize("NFC", t)] for t in cases]}
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
