#include "core/data/bpe_files.h"

#include <array>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data/unicode.h"
#include "core/error.h"

namespace zt {

namespace fs = std::filesystem;

// Token ids index a table, so an id is also an allocation: ids above the largest vocabulary
// a model takes (model.vocab_size <= 2^24) are refused rather than allocated.
constexpr uint64_t kMaxTokenId = (uint64_t{1} << 24) - 1;

namespace {

// GPT-2 writes each byte of a token as a printable code point (bytes_to_unicode): printable
// Latin-1 bytes as themselves, the other 68 bytes as U+0100 onwards. The inverse, cp -> byte.
const std::array<int16_t, 324> kByteOfCodePoint = [] {
  std::array<int16_t, 324> t{};
  t.fill(-1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[printable ? b : next++] = static_cast<int16_t>(b);
  }
  return t;
}();

bool byte_level_to_bytes(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const unicode::Decoded d = unicode::decode(s, i);
    if (!d.valid || d.cp >= kByteOfCodePoint.size() || kByteOfCodePoint[d.cp] < 0) return false;
    out += static_cast<char>(kByteOfCodePoint[d.cp]);
    i += d.len;
  }
  return true;
}

nlohmann::json read_json(const std::string& path) {
  if (!fs::is_regular_file(path)) fail("tokenizer file not found: {}", path);
  try {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
}

// Fills tokens/ids from a byte-level {"token": id} map. Tokens that are not byte-level text
// are taken as written when `literal_ok` says so (added tokens), else an error.
void read_vocab(const std::string& path, const nlohmann::json& vocab, BpeModel& m,
                const std::unordered_map<uint32_t, std::string>& literal_ok) {
  if (!vocab.is_object() || vocab.empty()) fail("{}: the vocab must be a non-empty {{\"token\": id}} object", path);
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_unsigned() || it.value().get<uint64_t>() > kMaxTokenId)
      fail("{}: vocab entry \"{}\" has id {}, expected a non-negative integer below 2^24", path, it.key(),
           it.value().dump());
    const auto id = it.value().get<uint32_t>();
    if (!byte_level_to_bytes(it.key(), bytes)) {
      auto lit = literal_ok.find(id);
      if (lit == literal_ok.end() || lit->second != it.key())
        fail("{}: vocab entry \"{}\" (id {}) is not byte-level text (GPT-2's byte-to-character mapping); only "
             "byte-level BPE is supported", path, it.key(), id);
      bytes = it.key();
    }
    if (m.tokens.size() <= id) m.tokens.resize(id + 1);
    if (!m.tokens[id].empty()) fail("{}: id {} is used by two vocab entries", path, id);
    m.tokens[id] = bytes;
    m.ids.emplace(bytes, id);
  }
}

uint32_t id_of(const std::string& path, const BpeModel& m, const std::string& bytes, size_t rank, const std::string& shown) {
  auto it = m.ids.find(bytes);
  if (it == m.ids.end()) fail("{}: merge {} ({}) uses or makes a token that is not in the vocab", path, rank, shown);
  return it->second;
}

void add_merge(const std::string& path, BpeModel& m, std::string_view left, std::string_view right, size_t rank) {
  std::string a, b;
  const std::string shown = fmt::format("\"{} {}\"", left, right);
  if (!byte_level_to_bytes(left, a) || !byte_level_to_bytes(right, b))
    fail("{}: merge {} ({}) is not byte-level text", path, rank, shown);
  const uint32_t ia = id_of(path, m, a, rank, shown), ib = id_of(path, m, b, rank, shown);
  const uint32_t merged = id_of(path, m, a + b, rank, shown);
  m.merges.insert(ia, ib, {static_cast<uint32_t>(rank), merged});
}

std::string describe(const nlohmann::json& j) {
  std::string s = j.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

// Field `key` of `x` as written, null where x is no object or has no such key. Comparing it
// with a value never throws, where json::value(key, default) throws nlohmann's type_error, naming
// neither file nor key, on a field of another type (fuzz_bpe: "lstrip": "BPE").
const nlohmann::json& field(const nlohmann::json& x, const char* key) {
  static const nlohmann::json absent;
  if (!x.is_object()) return absent;
  const auto it = x.find(key);
  return it == x.end() ? absent : *it;
}

bool absent_or_false(const nlohmann::json& v) { return v.is_null() || v == false; }

// A boolean field: absent or null gives `otherwise`; anything but true or false is an error.
bool flag(const std::string& path, const nlohmann::json& x, const char* where, const char* key, bool otherwise) {
  const nlohmann::json& v = field(x, key);
  if (v.is_null()) return otherwise;
  if (!v.is_boolean()) fail("{}: {}.{} is {}; expected true or false", path, where, key, describe(v));
  return v.get<bool>();
}

bool is_byte_level(const nlohmann::json& p, bool use_regex) {
  const nlohmann::json& regex = field(p, "use_regex");
  return field(p, "type") == "ByteLevel" && absent_or_false(field(p, "add_prefix_space")) &&
         (regex.is_null() ? use_regex : regex == use_regex);
}

// ByteLevel with its built-in GPT-2 regex, or Sequence[Split(known regex, Isolated), ByteLevel without regex].
PretokPattern hf_pattern(const std::string& path, const nlohmann::json& p) {
  if (is_byte_level(p, true)) return PretokPattern::gpt2;
  const nlohmann::json& list = field(p, "pretokenizers");
  if (field(p, "type") == "Sequence" && list.is_array() && list.size() == 2 && is_byte_level(list[1], false)) {
    const auto& split = list[0];
    const nlohmann::json& regex_field = field(field(split, "pattern"), "Regex");
    if (field(split, "type") == "Split" && field(split, "behavior") == "Isolated" &&
        absent_or_false(field(split, "invert")) && regex_field.is_string()) {
      const std::string regex = regex_field.get<std::string>();
      if (auto pattern = pretok_pattern_of_regex(regex)) return *pattern;
      fail("{}: pre_tokenizer Split regex is not one of the supported patterns (GPT-2, Llama 3 / cl100k, Qwen2): {}",
           path, regex);
    }
  }
  fail("{}: unsupported pre_tokenizer {} (supported: ByteLevel with add_prefix_space false, or a Sequence of a "
       "Split regex and ByteLevel with use_regex false)", path, describe(p));
}

// No normalizer, NFC, or a Sequence of NFC only (Qwen2's is {"type": "NFC"}).
Normalizer hf_normalizer(const std::string& path, const nlohmann::json& n) {
  if (n.is_null()) return Normalizer::none;
  auto is_nfc = [](const nlohmann::json& x) { return field(x, "type") == "NFC"; };
  if (is_nfc(n)) return Normalizer::nfc;
  if (field(n, "type") == "Sequence" && field(n, "normalizers").is_array()) {
    const auto& list = field(n, "normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      if (!is_nfc(list[i]))
        fail("{}: normalizer.normalizers[{}] {} is not supported (only NFC)", path, i, describe(list[i]));
    return list.empty() ? Normalizer::none : Normalizer::nfc;
  }
  fail("{}: normalizer {} is not supported (only NFC, or a Sequence of NFC)", path, describe(n));
}

}  // namespace

std::unique_ptr<BpeTokenizer> load_hf_tokenizer(const std::string& path) { return load_hf_tokenizer(path, read_json(path)); }

std::unique_ptr<BpeTokenizer> load_hf_tokenizer(const std::string& path, const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("{}: no \"model\" object", path);
  const auto& model = j["model"];
  if (field(model, "type") != "BPE") fail("{}: model.type is {}; only BPE is supported", path, describe(field(model, "type")));
  auto is_unset = [&](const char* key) { return !model.contains(key) || model[key].is_null() || model[key] == "" || model[key] == false; };
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "byte_fallback"})
    if (!is_unset(key)) fail("{}: model.{} is {}; only byte-level BPE without it is supported", path, key, describe(model[key]));
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0)
    fail("{}: model.dropout is {}; BPE dropout is for training a tokenizer, not supported", path, describe(model["dropout"]));
  const Normalizer normalizer = hf_normalizer(path, j.contains("normalizer") ? j["normalizer"] : nlohmann::json());
  if (!field(j, "decoder").is_null() && field(field(j, "decoder"), "type") != "ByteLevel")
    fail("{}: decoder {} is not supported (expected ByteLevel)", path, describe(j["decoder"]));
  if (!j.contains("pre_tokenizer")) fail("{}: no pre_tokenizer", path);

  BpeModel m;
  m.pattern = hf_pattern(path, j["pre_tokenizer"]);
  m.whole_piece_first = flag(path, model, "model", "ignore_merges", false);
  m.normalizer = normalizer;
  std::unordered_map<uint32_t, std::string> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail("{}: added_tokens must be a list", path);
    for (const auto& t : j["added_tokens"]) {
      if (!t.contains("id") || !t["id"].is_number_unsigned() || t["id"].get<uint64_t>() > kMaxTokenId ||
          !t.contains("content") || !t["content"].is_string() || t["content"].get<std::string>().empty())
        fail("{}: added token {} needs an integer id below 2^24 and a non-empty content", path, describe(t));
      for (const char* key : {"single_word", "lstrip", "rstrip"})
        if (!absent_or_false(field(t, key)))
          fail("{}: added token {} has {} {}, which is not supported", path, describe(t), key, describe(field(t, key)));
      // We match added tokens in the text as given; HF matches these in the normalized text.
      if (normalizer != Normalizer::none && !absent_or_false(field(t, "normalized")))
        fail("{}: added token {} has normalized {}, which is not supported with a normalizer", path, describe(t),
             describe(field(t, "normalized")));
      added[t["id"].get<uint32_t>()] = t["content"].get<std::string>();
    }
  }
  read_vocab(path, field(model, "vocab"), m, added);
  for (const auto& [id, content] : added) {
    if (m.tokens.size() <= id) m.tokens.resize(id + 1);
    if (!m.tokens[id].empty() && m.tokens[id] != content)
      fail("{}: added token \"{}\" has id {}, which the vocab gives to another token", path, content, id);
    m.tokens[id] = content;
    m.added.emplace_back(content, id);
  }
  if (!model.contains("merges") || !model["merges"].is_array()) fail("{}: model.merges must be a list", path);
  const auto& merges = model["merges"];
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& e = merges[r];
    if (e.is_string()) {  // "a b": byte-level tokens never hold a space (it is written 'Ġ')
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail("{}: merge {} is \"{}\", expected two tokens separated by one space", path, r, s);
      add_merge(path, m, std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1), r);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      add_merge(path, m, e[0].get<std::string>(), e[1].get<std::string>(), r);
    } else {
      fail("{}: merge {} is {}, expected \"a b\" or [\"a\", \"b\"]", path, r, describe(e));
    }
  }
  return std::make_unique<BpeTokenizer>(std::move(m), BpeSource{"hf", {path}});
}

std::unique_ptr<BpeTokenizer> load_gpt2_tokenizer(const std::string& vocab_path, const std::string& merges_path) {
  BpeModel m;
  read_vocab(vocab_path, read_json(vocab_path), m, {});
  std::ifstream in(merges_path);
  if (!in) fail("tokenizer file not found: {}", merges_path);
  std::string line;
  size_t rank = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      fail("{}: line {} is \"{}\", expected two tokens separated by one space", merges_path, line_no, line);
    add_merge(merges_path, m, std::string_view(line).substr(0, sp), std::string_view(line).substr(sp + 1), rank++);
  }
  return std::make_unique<BpeTokenizer>(std::move(m), BpeSource{"gpt2", {vocab_path, merges_path}});
}

namespace {

bool base64_decode(std::string_view s, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] != '='; ++i) {
    const int v = value(s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  for (; i < s.size(); ++i)
    if (s[i] != '=') return false;
  return !out.empty() && s.size() % 4 == 0;
}

}  // namespace

std::unique_ptr<BpeTokenizer> load_tiktoken(const std::string& path, PretokPattern pattern) {
  std::ifstream in(path);
  if (!in) fail("tokenizer file not found: {}", path);
  BpeModel m;
  m.pattern = pattern;
  m.whole_piece_first = true;
  std::string line, bytes;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    char* end = nullptr;
    const unsigned long long rank = sp == std::string::npos ? 0 : std::strtoull(line.c_str() + sp + 1, &end, 10);
    if (sp == std::string::npos || end == line.c_str() + sp + 1 || *end != '\0' || rank > kMaxTokenId ||
        !base64_decode(std::string_view(line).substr(0, sp), bytes))
      fail("{}: line {} is \"{}\", expected a base64 token and its rank", path, line_no, line.substr(0, 80));
    const auto id = static_cast<uint32_t>(rank);
    if (m.tokens.size() <= id) m.tokens.resize(id + 1);
    if (!m.tokens[id].empty()) fail("{}: line {}: rank {} is used twice", path, line_no, id);
    if (!m.ids.emplace(bytes, id).second) fail("{}: line {}: token repeated (rank {})", path, line_no, id);
    m.tokens[id] = bytes;
  }
  if (m.ids.empty()) fail("{}: no tokens", path);
  // tiktoken merges the adjacent pair whose concatenation has the lowest rank: every split of a
  // token into two tokens is such a pair.
  for (const auto& [tok, id] : m.ids)
    for (size_t k = 1; k < tok.size(); ++k) {
      auto l = m.ids.find(std::string_view(tok).substr(0, k));
      if (l == m.ids.end()) continue;
      auto r = m.ids.find(std::string_view(tok).substr(k));
      if (r != m.ids.end()) m.merges.insert(l->second, r->second, {id, id});
    }
  return std::make_unique<BpeTokenizer>(std::move(m), BpeSource{"tiktoken", {path}});
}

PretokPattern tiktoken_pattern_for(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  if (name.find("o200k") != std::string::npos)
    fail("{}: o200k's pre-tokenizer pattern is not supported (supported: gpt2 for r50k/p50k/gpt2 files, cl100k otherwise)",
         path);
  for (const char* gpt2 : {"r50k", "p50k", "gpt2"})
    if (name.find(gpt2) != std::string::npos) return PretokPattern::gpt2;
  return PretokPattern::cl100k;
}

}  // namespace zt
