#include "core/data/unicode.h"

#include <algorithm>
#include <array>
#include <span>

#include "core/data/unicode_tables.h"

namespace zt::unicode {

namespace {

bool in_ranges(std::span<const CodeRange> ranges, uint32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

CharClass classify(uint32_t cp) {
  if (in_ranges(kLetterRanges, cp)) return CharClass::letter;
  if (in_ranges(kNumberRanges, cp)) return CharClass::number;
  if (in_ranges(kWhiteSpaceRanges, cp)) return CharClass::space;
  return CharClass::other;
}

// Latin-1 covers nearly every character of Western text: one table lookup instead of three searches.
const std::array<CharClass, 256> kLatin1 = [] {
  std::array<CharClass, 256> t{};
  for (uint32_t cp = 0; cp < 256; ++cp) t[cp] = classify(cp);
  return t;
}();

}  // namespace

CharClass char_class(uint32_t cp) { return cp < 256 ? kLatin1[cp] : classify(cp); }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace zt::unicode
