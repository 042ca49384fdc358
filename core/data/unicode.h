// UTF-8 decoding and the character classes the BPE pre-tokenizers split on (letters \p{L},
// numbers \p{N}, White_Space \s, everything else), from the generated unicode_tables.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zt::unicode {

enum class CharClass : uint8_t { letter, number, space, other };

CharClass char_class(uint32_t cp);

// The code point at text[i] and its length in bytes. A byte that does not start a valid,
// shortest-form sequence decodes as itself with length 1 and valid = false, so scanners can
// step over malformed input one byte at a time.
struct Decoded {
  uint32_t cp;
  uint32_t len;
  bool valid;
};

inline Decoded decode(std::string_view text, size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return {b0, 1, true};
  const size_t left = text.size() - i;
  auto cont = [&](size_t k) { return k < left && (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80; };
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(text[i + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return {((b0 & 0x1Fu) << 6) | byte(1), 2, true};
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    const uint32_t cp = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3, true};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const uint32_t cp = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
    if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4, true};
  }
  return {b0, 1, false};
}

void append_utf8(std::string& out, uint32_t cp);

}  // namespace zt::unicode
