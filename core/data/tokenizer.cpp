#include "core/data/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/data/bpe.h"
#include "core/data/bpe_files.h"
#include "core/data/hf_tokenizer_json.h"
#include "core/data/unicode.h"
#include "core/error.h"

namespace zt {

namespace fs = std::filesystem;

namespace {

// A character as a reader recognizes it in an error: "character 'a' (byte 97)", "character
// '\n' (byte 10)", "character 'é' (U+00E9)".
std::string describe_char(uint32_t cp) {
  if (cp >= 32 && cp < 127) return fmt::format("character '{}' (byte {})", static_cast<char>(cp), cp);
  if (cp == '\n') return "character '\\n' (byte 10)";
  if (cp == '\t') return "character '\\t' (byte 9)";
  if (cp == '\r') return "character '\\r' (byte 13)";
  if (cp < 128) return fmt::format("control byte {}", cp);
  std::string s;
  unicode::append_utf8(s, cp);
  return fmt::format("character '{}' (U+{:04X})", s, cp);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  bool ok;
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("cannot write {}: {}", tmp, std::strerror(errno));
    out << content;
    out.flush();
    ok = static_cast<bool>(out);
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("cannot write {}: {}", path, std::strerror(err));
  }
}

void collect_code_points(std::string_view text, std::vector<uint32_t>& seen, const std::string& what,
                         int64_t offset) {
  bool ascii[128] = {};
  std::unordered_set<uint32_t> other;
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 128) {
      ascii[b] = true;
      ++i;
      continue;
    }
    const unicode::Decoded d = unicode::decode(text, i);
    if (!d.valid)
      fail("{}: malformed UTF-8 (byte 0x{:02X}) at byte offset {}; the char tokenizer reads UTF-8 text", what, b,
           offset + static_cast<int64_t>(i));
    other.insert(d.cp);
    i += d.len;
  }
  for (uint32_t c = 0; c < 128; ++c)
    if (ascii[c]) other.insert(c);
  for (uint32_t c : seen) other.insert(c);
  seen.assign(other.begin(), other.end());
  std::sort(seen.begin(), seen.end());
}

CharTokenizer CharTokenizer::from_text(std::string_view text) {
  std::vector<uint32_t> vocab;
  collect_code_points(text, vocab, "text");
  return CharTokenizer(std::move(vocab));
}

CharTokenizer::CharTokenizer(std::vector<uint32_t> vocab) : vocab_(std::move(vocab)), ascii_id_(128, -1) {
  for (size_t i = 0; i < vocab_.size(); ++i) {
    if (vocab_[i] < 128)
      ascii_id_[vocab_[i]] = static_cast<int32_t>(i);
    else
      id_of_[vocab_[i]] = static_cast<uint32_t>(i);
  }
}

std::vector<uint32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 128) {
      if (ascii_id_[b] < 0)
        fail("{} at position {} is not in the {}-character vocabulary", describe_char(b), i, vocab_.size());
      ids.push_back(static_cast<uint32_t>(ascii_id_[b]));
      ++i;
      continue;
    }
    const unicode::Decoded d = unicode::decode(text, i);
    if (!d.valid) fail("malformed UTF-8 (byte 0x{:02X}) at position {}; the char tokenizer reads UTF-8 text", b, i);
    auto it = id_of_.find(d.cp);
    if (it == id_of_.end())
      fail("{} at position {} is not in the {}-character vocabulary", describe_char(d.cp), i, vocab_.size());
    ids.push_back(it->second);
    i += d.len;
  }
  return ids;
}

std::string CharTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  s.reserve(ids.size());
  for (uint32_t id : ids) {
    if (id < vocab_.size())
      unicode::append_utf8(s, vocab_[id]);
    else
      s += '?';
  }
  return s;
}

void CharTokenizer::save(const std::string& path) const {
  write_file_atomic(path, nlohmann::json{{"kind", "char"}, {"unit", "codepoint"}, {"vocab", vocab_}}.dump() + "\n");
}

std::vector<uint32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  for (uint32_t id : ids) s += id < 256 ? static_cast<char>(id) : '?';
  return s;
}

void ByteTokenizer::save(const std::string& path) const {
  write_file_atomic(path, nlohmann::json{{"kind", "byte"}}.dump() + "\n");
}

namespace {

std::unique_ptr<Tokenizer> load_char_record(const std::string& path, const nlohmann::json& j) {
  if (!j.contains("vocab") || !j["vocab"].is_array() || j["vocab"].empty())
    fail("{}: a char vocab file needs a non-empty \"vocab\" list of code points", path);
  // Records without "unit" were written when the char tokenizer worked on bytes: the same
  // ids as code points for ASCII, and not decodable otherwise.
  const bool bytes = !j.contains("unit");
  if (!bytes && j["unit"] != "codepoint") fail("{}: unknown char vocab unit {} (expected \"codepoint\")", path, j["unit"].dump());
  const int64_t limit = bytes ? 127 : 0x10FFFF;
  std::vector<uint32_t> vocab;
  std::unordered_set<uint32_t> seen;
  for (size_t i = 0; i < j["vocab"].size(); ++i) {
    const auto& v = j["vocab"][i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > limit)
      fail("{}: vocab entry {} is {}, expected {}", path, i, v.dump(),
           bytes ? "an ASCII byte value 0..127 (a byte-level char vocab from an older zt with non-ASCII "
                   "bytes cannot be read; prepare the data again)"
                 : "a code point 0..0x10FFFF");
    const auto c = static_cast<uint32_t>(v.get<int64_t>());
    if (!seen.insert(c).second) fail("{}: vocab entry {} repeats code point {}", path, i, c);
    vocab.push_back(c);
  }
  return std::make_unique<CharTokenizer>(std::move(vocab));
}

std::unique_ptr<Tokenizer> load_record(const std::string& path, const nlohmann::json& j) {
  if (!j["kind"].is_string()) fail("{}: \"kind\" must be a string (char, byte or bpe)", path);
  const std::string kind = j["kind"].get<std::string>();
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  if (kind == "char") return load_char_record(path, j);
  if (kind == "bpe") {
    const fs::path dir = fs::path(path).parent_path();
    if (!j.contains("format") || !j["format"].is_string() || !j.contains("files") || !j["files"].is_array())
      fail("{}: a bpe record needs a string \"format\" and a list \"files\"", path);
    std::vector<std::string> files;
    for (const auto& f : j["files"]) {
      if (!f.is_string()) fail("{}: \"files\" must list file names", path);
      files.push_back((dir / f.get<std::string>()).string());
    }
    const std::string format = j["format"].get<std::string>();
    if (format == "hf" && files.size() == 1) return load_hf_tokenizer(files[0]);
    if (format == "gpt2" && files.size() == 2) return load_gpt2_tokenizer(files[0], files[1]);
    if (format == "tiktoken" && files.size() == 1) {
      const nlohmann::json pattern_name = j.value("pattern", nlohmann::json(""));
      if (!pattern_name.is_string()) fail("{}: \"pattern\" must be a string", path);
      const std::string name = pattern_name.get<std::string>();
      auto pattern = pretok_pattern_named(name);
      if (!pattern) fail("{}: unknown pre-tokenizer pattern '{}' (expected gpt2, cl100k or qwen2)", path, name);
      return load_tiktoken(files[0], *pattern);
    }
    fail("{}: bpe record with format '{}' and {} files (expected hf with 1, gpt2 with 2, tiktoken with 1)", path,
         format, files.size());
  }
  fail("{}: unknown tokenizer kind '{}' (expected char, byte or bpe)", path, kind);
}

std::unique_ptr<Tokenizer> load_from_directory(const fs::path& dir) {
  if (fs::is_regular_file(dir / "tokenizer.json")) return load_tokenizer((dir / "tokenizer.json").string());
  if (fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt"))
    return load_gpt2_tokenizer((dir / "vocab.json").string(), (dir / "merges.txt").string());
  std::vector<fs::path> tiktoken;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tiktoken") tiktoken.push_back(e.path());
  if (tiktoken.size() == 1) return load_tiktoken(tiktoken[0].string(), tiktoken_pattern_for(tiktoken[0].string()));
  fail("{}: no tokenizer in this directory (looked for tokenizer.json, vocab.json + merges.txt, one .tiktoken file; "
       "found {} .tiktoken files)", dir.string(), tiktoken.size());
}

// GPT-2's pair: vocab.json + merges.txt, or OpenAI's original names encoder.json + vocab.bpe.
std::string partner_of(const fs::path& p) {
  const std::string name = p.filename().string();
  auto swap_suffix = [&](std::string_view from, std::string_view to) {
    return (p.parent_path() / (name.substr(0, name.size() - from.size()) + std::string(to))).string();
  };
  if (name.ends_with("vocab.json")) return swap_suffix("vocab.json", "merges.txt");
  if (name.ends_with("merges.txt")) return swap_suffix("merges.txt", "vocab.json");
  if (name.ends_with("encoder.json")) return swap_suffix("encoder.json", "vocab.bpe");
  if (name.ends_with("vocab.bpe")) return swap_suffix("vocab.bpe", "encoder.json");
  return "";
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (fs::is_directory(path)) return load_from_directory(path);
  if (!fs::is_regular_file(path)) fail("tokenizer file not found: {}", path);
  const fs::path p(path);
  if (p.extension() == ".tiktoken") return load_tiktoken(path, tiktoken_pattern_for(path));
  if (p.extension() == ".txt" || p.extension() == ".bpe") {
    const std::string vocab = partner_of(p);
    if (vocab.empty() || !fs::is_regular_file(vocab))
      fail("{}: a GPT-2 merges file needs its vocab beside it ({} not found)", path, vocab.empty() ? "vocab.json" : vocab);
    return load_gpt2_tokenizer(vocab, path);
  }
  nlohmann::json j;
  try {
    std::ifstream in(path);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: not a valid tokenizer file (JSON): {}", path, e.what());
  }
  if (!j.is_object())
    fail("{}: not a tokenizer file: expected a JSON object (a vocab record, a tokenizer.json or GPT-2's vocab.json)", path);
  if (j.contains("kind")) return load_record(path, j);
  if (j.contains("model")) return load_hf_tokenizer_json(path, j);
  if (!j.empty() && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_number_integer(); })) {
    const std::string merges = partner_of(p);
    if (merges.empty() || !fs::is_regular_file(merges))
      fail("{}: a GPT-2 vocab needs its merges beside it ({} not found)", path, merges.empty() ? "merges.txt" : merges);
    return load_gpt2_tokenizer(path, merges);
  }
  fail("{}: not a tokenizer file: expected a vocab record with a string \"kind\" (char, byte, bpe), a Hugging Face "
       "tokenizer.json with \"model\", or GPT-2's vocab.json (token -> id)", path);
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, std::string_view text) {
  if (kind == "char") return std::make_unique<CharTokenizer>(CharTokenizer::from_text(text));
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  if (kind.find_first_of("/.") == std::string::npos)
    fail("unknown tokenizer '{}' (expected char, byte or the path of a tokenizer file)", kind);
  return load_tokenizer(kind);
}

std::string read_text_file(const std::string& path) {
  if (!fs::is_regular_file(path)) fail("text file not found: {}", path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace zt
