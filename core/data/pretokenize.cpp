#include "core/data/pretokenize.h"

#include "core/data/unicode.h"

namespace zt {

using unicode::CharClass;

namespace {

constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kRegex =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Char {
  CharClass cls;
  uint32_t len;
};

// Malformed bytes count as "other": the reference regexes never see them (their input is
// always valid text), and byte-level BPE still encodes them.
inline Char char_at(std::string_view text, size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return {unicode::char_class(b), 1};
  const unicode::Decoded d = unicode::decode(text, i);
  return {d.valid ? unicode::char_class(d.cp) : CharClass::other, d.len};
}

inline size_t run_of(std::string_view text, size_t i, CharClass cls) {
  while (i < text.size()) {
    const Char c = char_at(text, i);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// 's 't 'm 'd 're 've 'll at i: the piece's end, or 0.
size_t contraction(std::string_view text, size_t i, bool any_case) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  auto at = [&](size_t k) { return any_case ? lower(text[k]) : text[k]; };
  const char a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 >= text.size()) return 0;
  const char b = at(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return 0;
}

// \s+(?!\S)|\s+ from i; with newline_ends, \s*[\r\n]+ first (it ends at the run's last newline).
size_t whitespace(std::string_view text, size_t i, bool newline_ends) {
  size_t end = i, last = i, after_newline = 0;
  while (end < text.size()) {
    const Char c = char_at(text, end);
    if (c.cls != CharClass::space) break;
    if (text[end] == '\n' || text[end] == '\r') after_newline = end + 1;
    last = end;
    end += c.len;
  }
  if (newline_ends && after_newline) return after_newline;
  // Before a non-space the run gives up its last character, which then starts the next piece.
  if (end < text.size() && last > i) return last;
  return end;
}

size_t next_gpt2(std::string_view text, size_t i) {
  if (size_t e = contraction(text, i, false)) return e;
  const Char c = char_at(text, i);
  if (c.cls != CharClass::space) return run_of(text, i + c.len, c.cls);
  if (text[i] == ' ' && i + 1 < text.size()) {
    const Char n = char_at(text, i + 1);
    if (n.cls != CharClass::space) return run_of(text, i + 1 + n.len, n.cls);
  }
  return whitespace(text, i, false);
}

size_t next_cl100k(std::string_view text, size_t i, int max_digits) {
  if (size_t e = contraction(text, i, true)) return e;
  const Char c = char_at(text, i);
  if (c.cls == CharClass::letter) return run_of(text, i + c.len, CharClass::letter);
  if (c.cls == CharClass::number) {
    size_t e = i + c.len;
    for (int k = 1; k < max_digits && e < text.size(); ++k) {
      const Char n = char_at(text, e);
      if (n.cls != CharClass::number) break;
      e += n.len;
    }
    return e;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+: one space or symbol glued to the word after it.
  if (text[i] != '\r' && text[i] != '\n' && i + c.len < text.size() &&
      char_at(text, i + c.len).cls == CharClass::letter)
    return run_of(text, i + c.len, CharClass::letter);
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t j = i;
  if (text[i] == ' ' && i + 1 < text.size() && char_at(text, i + 1).cls == CharClass::other) j = i + 1;
  if (char_at(text, j).cls == CharClass::other) {
    j = run_of(text, j, CharClass::other);
    while (j < text.size() && (text[j] == '\r' || text[j] == '\n')) ++j;
    return j;
  }
  return whitespace(text, i, true);
}

}  // namespace

std::string_view to_string(PretokPattern p) {
  switch (p) {
    case PretokPattern::gpt2: return "gpt2";
    case PretokPattern::cl100k: return "cl100k";
    case PretokPattern::qwen2: return "qwen2";
  }
  return "?";
}

std::optional<PretokPattern> pretok_pattern_named(std::string_view name) {
  for (auto p : {PretokPattern::gpt2, PretokPattern::cl100k, PretokPattern::qwen2})
    if (name == to_string(p)) return p;
  return std::nullopt;
}

std::optional<PretokPattern> pretok_pattern_of_regex(std::string_view regex) {
  if (regex == kGpt2Regex) return PretokPattern::gpt2;
  if (regex == kLlama3Regex || regex == kCl100kRegex) return PretokPattern::cl100k;
  if (regex == kQwen2Regex) return PretokPattern::qwen2;
  return std::nullopt;
}

std::string_view pretok_regex(PretokPattern p) {
  switch (p) {
    case PretokPattern::gpt2: return kGpt2Regex;
    case PretokPattern::cl100k: return kCl100kRegex;
    case PretokPattern::qwen2: return kQwen2Regex;
  }
  return kGpt2Regex;
}

size_t next_piece(std::string_view text, size_t begin, PretokPattern pattern) {
  switch (pattern) {
    case PretokPattern::gpt2: return next_gpt2(text, begin);
    case PretokPattern::cl100k: return next_cl100k(text, begin, 3);
    case PretokPattern::qwen2: return next_cl100k(text, begin, 1);
  }
  return text.size();
}

}  // namespace zt
