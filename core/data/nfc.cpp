#include "core/data/nfc.h"

#include <algorithm>
#include <vector>

#include "core/data/unicode.h"
#include "core/data/unicode_nfc_tables.h"

namespace zt::unicode {

namespace {

// Hangul syllables: S = SBase + (L * VCount + V) * TCount + T (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// No code point below U+0300 combines with its neighbours or changes under NFC.
constexpr uint32_t kFirstUnstable = 0x300;

bool nfc_stable(uint32_t cp) {
  if (cp < kFirstUnstable) return true;
  const auto* end = std::end(kNfcUnstableRanges);
  const auto* it = std::upper_bound(std::begin(kNfcUnstableRanges), end, cp,
                                    [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it == std::begin(kNfcUnstableRanges) || cp > (it - 1)->last;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp - kSBase < kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = std::end(kDecompositions);
  const auto* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const Decomposition& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  out.insert(out.end(), kDecompositionPool + it->offset, kDecompositionPool + it->offset + it->length);
}

// The primary composite of a + b, or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a - kLBase < kLCount && b - kVBase < kVCount) return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a - kSBase < kSCount && (a - kSBase) % kTCount == 0 && b - kTBase - 1 < kTCount - 1) return a + (b - kTBase);
  const auto* end = std::end(kComposites);
  const auto* it = std::lower_bound(std::begin(kComposites), end, std::pair{a, b}, [](const Composite& c, std::pair<uint32_t, uint32_t> k) {
    return c.first < k.first || (c.first == k.first && c.second < k.second);
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

// Canonical ordering then canonical composition of one decomposed segment, in place.
void order_and_compose(std::vector<uint32_t>& s) {
  // A stable insertion sort of each run of non-starters by combining class.
  for (size_t i = 1; i < s.size(); ++i) {
    const uint8_t c = combining_class(s[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0 && combining_class(s[j - 1]) > c; --j) std::swap(s[j], s[j - 1]);
  }
  if (s.empty()) return;
  // A character composes with the last starter unless something between them is blocking:
  // a starter, or a mark of the same or a higher class (last_class tracks the highest).
  size_t starter = 0, kept = 1;
  int last_class = combining_class(s[0]) == 0 ? 0 : 256;  // a leading mark blocks everything
  for (size_t i = 1; i < s.size(); ++i) {
    const uint32_t cp = s[i];
    const int c = combining_class(cp);
    const uint32_t composite = last_class == 256 ? 0 : compose(s[starter], cp);
    if (composite != 0 && (last_class < c || last_class == 0)) {
      s[starter] = composite;
      continue;
    }
    if (c == 0) starter = kept;
    last_class = c;
    s[kept++] = cp;
  }
  s.resize(kept);
}

}  // namespace

uint8_t combining_class(uint32_t cp) {
  if (cp < kFirstUnstable) return 0;
  const auto* end = std::end(kCombiningClasses);
  const auto* it = std::upper_bound(std::begin(kCombiningClasses), end, cp,
                                    [](uint32_t c, const ClassRange& r) { return c < r.first; });
  return it != std::begin(kCombiningClasses) && cp <= (it - 1)->last ? (it - 1)->ccc : 0;
}

bool to_nfc(std::string_view text, std::string& out) {
  // Quick check: ASCII and stable code points need nothing. Text is cut into segments that
  // each start at a stable code point; only segments holding an unstable one are rewritten.
  size_t i = 0;
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  // Start of the current segment: the last stable code point (or 0, or just after an invalid
  // byte, which nothing composes across).
  size_t segment = i > 0 ? i - 1 : 0;
  bool changed = false;
  std::vector<uint32_t> buf;
  std::string result;
  size_t copied = 0;  // text[0, copied) is in result already
  while (i < text.size()) {
    const Decoded d = decode(text, i);
    if (!d.valid || nfc_stable(d.cp)) {
      segment = d.valid ? i : i + d.len;
      i += d.len;
      continue;
    }
    // An unstable code point: the segment runs from the last stable one to the next stable
    // one (or invalid byte, which we pass through).
    size_t end = i + d.len;
    while (end < text.size()) {
      const Decoded e = decode(text, end);
      if (!e.valid || nfc_stable(e.cp)) break;
      end += e.len;
    }
    buf.clear();
    for (size_t k = segment; k < end;) {
      const Decoded e = decode(text, k);
      decompose(e.cp, buf);
      k += e.len;
    }
    order_and_compose(buf);
    std::string normalized;
    for (uint32_t cp : buf) append_utf8(normalized, cp);
    if (normalized != text.substr(segment, end - segment)) {
      if (!changed) result.reserve(text.size());
      changed = true;
      result.append(text.substr(copied, segment - copied));
      result += normalized;
      copied = end;
    }
    segment = end;
    i = end;
  }
  if (!changed) return false;
  result.append(text.substr(copied));
  out = std::move(result);
  return true;
}

std::string nfc(std::string_view text) {
  std::string out;
  return to_nfc(text, out) ? out : std::string(text);
}

}  // namespace zt::unicode
