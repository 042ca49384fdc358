#include "core/data/hf_tokenizer_json.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "core/data/bpe.h"
#include "core/data/bpe_files.h"
#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/error.h"

namespace zt {

namespace {

using nlohmann::ordered_json;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
// for U+0100 onwards.
std::string byte_level(std::string_view bytes) {
  static const std::array<uint32_t, 256> cp_of_byte = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<uint32_t>(b) : next++;
    }
    return t;
  }();
  std::string s;
  for (char c : bytes) unicode::append_utf8(s, cp_of_byte[static_cast<unsigned char>(c)]);
  return s;
}

ordered_json byte_level_step(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

ordered_json split_isolated(std::string_view regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", std::string(regex)}}}, {"behavior", "Isolated"}, {"invert", false}};
}

ordered_json bpe_model(const ordered_json& vocab, const ordered_json& merges, bool ignore_merges) {
  return {{"type", "BPE"},           {"dropout", nullptr},       {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
          {"byte_fallback", false},  {"ignore_merges", ignore_merges}, {"vocab", vocab}, {"merges", merges}};
}

std::string document(const ordered_json& pre_tokenizer, const ordered_json& decoder, const ordered_json& model) {
  const ordered_json j = {{"version", "1.0"},         {"truncation", nullptr},     {"padding", nullptr},
                          {"added_tokens", ordered_json::array()}, {"normalizer", nullptr},
                          {"pre_tokenizer", pre_tokenizer}, {"post_processor", nullptr}, {"decoder", decoder},
                          {"model", model}};
  return j.dump(2, ' ', false) + "\n";
}

std::string tiktoken_json(const BpeTokenizer& tok) {
  const BpeModel& m = tok.model();
  ordered_json vocab = ordered_json::object(), merges = ordered_json::array();
  for (uint32_t id = 0; id < m.tokens.size(); ++id)
    if (!m.tokens[id].empty()) vocab[byte_level(m.tokens[id])] = id;
  for (const RecoveredMerge& r : merges_from_ranks(tok))
    merges.push_back({byte_level(m.tokens[r.left]), byte_level(m.tokens[r.right])});
  const ordered_json pre = {{"type", "Sequence"},
                            {"pretokenizers", {split_isolated(pretok_regex(m.pattern)), byte_level_step(false)}}};
  return document(pre, byte_level_step(true), bpe_model(vocab, merges, /*ignore_merges=*/true));
}

std::string byte_json() {
  ordered_json vocab = ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level(std::string(1, static_cast<char>(b)))] = b;
  return document(byte_level_step(true), byte_level_step(true), bpe_model(vocab, ordered_json::array(), false));
}

constexpr const char* kEachCodePoint = R"([\s\S])";

std::string char_json(const CharTokenizer& tok) {
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < tok.vocab().size(); ++id) {
    std::string c;
    unicode::append_utf8(c, tok.vocab()[id]);
    vocab[c] = id;
  }
  // Every code point a piece of its own; one the vocabulary lacks is an error there as here.
  const ordered_json model = {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "[UNK]"}};
  return document(split_isolated(kEachCodePoint), {{"type", "Fuse"}}, model);
}

}  // namespace

std::vector<RecoveredMerge> merges_from_ranks(const BpeTokenizer& tok) {
  const BpeModel& m = tok.model();
  std::vector<RecoveredMerge> out;
  std::vector<std::string> parts;
  for (uint32_t id = 0; id < m.tokens.size(); ++id) {
    const std::string& token = m.tokens[id];
    if (token.size() < 2) continue;
    // tiktoken's BPE on the token's bytes: join the adjacent pair whose concatenation has the
    // lowest rank (leftmost on ties) until none is a token.
    parts.clear();
    for (char c : token) parts.emplace_back(1, c);
    std::pair<std::string, std::string> last;
    while (parts.size() > 1) {
      size_t best = parts.size();
      uint32_t best_rank = UINT32_MAX;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = m.ids.find(parts[i] + parts[i + 1]);
        if (it != m.ids.end() && it->second < best_rank) best_rank = it->second, best = i;
      }
      if (best == parts.size()) break;
      last = {parts[best], parts[best + 1]};
      parts[best] += parts[best + 1];
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    if (parts.size() == 1) out.push_back({m.ids.at(last.first), m.ids.at(last.second), id});
  }
  // A merge's priority is its place in the list: tiktoken's priority is the merged rank.
  std::sort(out.begin(), out.end(), [](const RecoveredMerge& a, const RecoveredMerge& b) { return a.merged < b.merged; });
  return out;
}

std::string hf_tokenizer_json(const Tokenizer& tokenizer) {
  if (const auto* bpe = dynamic_cast<const BpeTokenizer*>(&tokenizer)) {
    ZT_CHECK(bpe->source().format == "tiktoken", "BPE from {} files is copied, not converted", bpe->source().format);
    return tiktoken_json(*bpe);
  }
  if (dynamic_cast<const ByteTokenizer*>(&tokenizer)) return byte_json();
  if (const auto* c = dynamic_cast<const CharTokenizer*>(&tokenizer)) return char_json(*c);
  fail("no Hugging Face tokenizer.json form for the {} tokenizer", tokenizer.kind());
}

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path, const nlohmann::json& j) {
  if (!j.contains("model") || !j["model"].is_object() || j["model"].value("type", nlohmann::json()) != "WordLevel")
    return load_hf_tokenizer(path, j);
  // Only the char form hf_tokenizer_json writes: anything else would not give these ids.
  auto null_or_absent = [&](const char* key) { return !j.contains(key) || j[key].is_null(); };
  if (!null_or_absent("normalizer")) fail("{}: a WordLevel tokenizer with a normalizer is not supported", path);
  if (j.value("pre_tokenizer", nlohmann::json()) != nlohmann::json(split_isolated(kEachCodePoint)))
    fail("{}: a WordLevel model is read only behind a Split that isolates each character ({}); pre_tokenizer is {}",
         path, split_isolated(kEachCodePoint).dump(), j.value("pre_tokenizer", nlohmann::json()).dump());
  if (!null_or_absent("added_tokens") && j["added_tokens"] != nlohmann::json::array())
    fail("{}: a WordLevel tokenizer with added_tokens is not supported", path);
  const auto& vocab = j["model"].value("vocab", nlohmann::json());
  if (!vocab.is_object() || vocab.empty()) fail("{}: model.vocab must be a non-empty object", path);
  std::vector<uint32_t> cps(vocab.size(), UINT32_MAX);
  for (const auto& [key, id] : vocab.items()) {
    const unicode::Decoded d = key.empty() ? unicode::Decoded{0, 0, false} : unicode::decode(key, 0);
    if (!d.valid || d.len != key.size())
      fail("{}: model.vocab entry \"{}\" is not one character (only character-level WordLevel is supported)", path, key);
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= cps.size() || cps[id.get<size_t>()] != UINT32_MAX)
      fail("{}: model.vocab entry \"{}\" has id {}; ids must be 0 .. {} once each", path, key, id.dump(), cps.size() - 1);
    cps[id.get<size_t>()] = d.cp;
  }
  return std::make_unique<CharTokenizer>(std::move(cps));
}

}  // namespace zt
