// Unicode Normalization Form C (canonical decomposition, canonical ordering by combining
// class, canonical composition with the composition exclusions; Hangul by arithmetic), the
// "NFC" normalizer of Hugging Face tokenizer.json files (Qwen2's). Tables: unicode_nfc_tables.h.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace zt::unicode {

// NFC of UTF-8 text. Returns false and leaves `out` alone when the text is already NFC by the
// quick check (the common case, one scan and no copy); else writes the normalized text to
// `out` and returns true. Bytes that are not valid UTF-8 pass through unchanged.
bool to_nfc(std::string_view text, std::string& out);

std::string nfc(std::string_view text);  // convenience: always a copy

uint8_t combining_class(uint32_t cp);

}  // namespace zt::unicode
