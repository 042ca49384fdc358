#include "core/data/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace zt {

namespace {

// A byte as a reader recognizes it in an error: "character 'a' (byte 97)", "character '\n'
// (byte 10)", "non-ASCII byte 195".
std::string describe_byte(unsigned char b) {
  if (b >= 32 && b < 127) return fmt::format("character '{}' (byte {})", static_cast<char>(b), b);
  if (b == '\n') return "character '\\n' (byte 10)";
  if (b == '\t') return "character '\\t' (byte 9)";
  if (b == '\r') return "character '\\r' (byte 13)";
  return fmt::format("{} byte {}", b >= 128 ? "non-ASCII" : "control", b);
}

}  // namespace

void Tokenizer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  bool ok;
  {
    std::ofstream out(tmp);
    if (!out) fail("cannot write {}: {}", tmp, std::strerror(errno));
    out << to_json() << "\n";
    out.flush();
    ok = static_cast<bool>(out);
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("cannot write {}: {}", path, std::strerror(err));
  }
}

CharTokenizer CharTokenizer::from_text(std::string_view text) {
  std::vector<bool> seen(256, false);
  for (unsigned char c : text) seen[c] = true;
  std::vector<uint8_t> vocab;
  for (int b = 0; b < 256; ++b)
    if (seen[b]) vocab.push_back(static_cast<uint8_t>(b));
  return CharTokenizer(std::move(vocab));
}

CharTokenizer::CharTokenizer(std::vector<uint8_t> vocab) : vocab_(std::move(vocab)), id_of_(256, -1) {
  for (size_t i = 0; i < vocab_.size(); ++i) id_of_[vocab_[i]] = static_cast<int32_t>(i);
}

std::vector<uint32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (id_of_[b] < 0)
      fail("{} at position {} is not in the {}-character vocabulary", describe_byte(b), i, vocab_.size());
    ids[i] = static_cast<uint32_t>(id_of_[b]);
  }
  return ids;
}

std::string CharTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  s.reserve(ids.size());
  for (uint32_t id : ids) s += id < vocab_.size() ? static_cast<char>(vocab_[id]) : '?';
  return s;
}

std::string CharTokenizer::to_json() const {
  return nlohmann::json{{"kind", "char"}, {"vocab", vocab_}}.dump();
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

std::string ByteTokenizer::to_json() const { return nlohmann::json{{"kind", "byte"}}.dump(); }

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail("vocab file not found: {}", path);
  nlohmann::json j;
  try {
    std::ifstream in(path);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: not a valid vocab file: {}", path, e.what());
  }
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string())
    fail("{}: not a vocab file: expected a JSON object with a string \"kind\" (char or byte)", path);
  const std::string kind = j["kind"].get<std::string>();
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  if (kind == "char") {
    if (!j.contains("vocab") || !j["vocab"].is_array() || j["vocab"].empty())
      fail("{}: a char vocab file needs a non-empty \"vocab\" list of byte values", path);
    std::vector<uint8_t> vocab;
    std::vector<bool> seen(256, false);
    for (size_t i = 0; i < j["vocab"].size(); ++i) {
      const auto& v = j["vocab"][i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 255)
        fail("{}: vocab entry {} is {}, expected a byte value 0..255", path, i, v.dump());
      const auto b = static_cast<uint8_t>(v.get<int64_t>());
      if (seen[b]) fail("{}: vocab entry {} repeats byte {}", path, i, b);
      seen[b] = true;
      vocab.push_back(b);
    }
    return std::make_unique<CharTokenizer>(std::move(vocab));
  }
  fail("{}: unknown tokenizer kind '{}' (expected char or byte)", path, kind);
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, std::string_view text) {
  if (kind == "char") return std::make_unique<CharTokenizer>(CharTokenizer::from_text(text));
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  fail("unknown tokenizer '{}' (expected char or byte)", kind);
}

std::string read_text_file(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail("text file not found: {}", path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace zt
