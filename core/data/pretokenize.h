// Pre-tokenizers of byte-level BPE: the regexes that cut text into pieces before merging,
// written as scanners over Unicode character classes. Each reproduces one reference regex:
//   gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   cl100k (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//          (tiktoken's cl100k_base and Llama 3; its possessive quantifiers match the same pieces)
//   qwen2  cl100k with \p{N} instead of \p{N}{1,3}
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zt {

enum class PretokPattern : uint8_t { gpt2, cl100k, qwen2 };

std::string_view to_string(PretokPattern p);
std::optional<PretokPattern> pretok_pattern_named(std::string_view name);
// The pattern whose regex source is `regex` exactly (as a tokenizer.json Split holds it).
std::optional<PretokPattern> pretok_pattern_of_regex(std::string_view regex);

// The regex source a tokenizer.json Split writes for the pattern (tiktoken's form for cl100k).
std::string_view pretok_regex(PretokPattern p);

// End (byte offset) of the piece that starts at `begin` < text.size().
size_t next_piece(std::string_view text, size_t begin, PretokPattern pattern);

}  // namespace zt
