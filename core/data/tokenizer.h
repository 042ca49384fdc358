// Tokenizers for text corpora: char-level (the distinct bytes of the training text) and
// byte-level (256 ids). Saved as a small JSON vocab file next to the token files.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<uint32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const uint32_t> ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string kind() const = 0;  // "char" or "byte"
  void save(const std::string& path) const;  // atomic (temp file + rename)

 protected:
  virtual std::string to_json() const = 0;
};

class CharTokenizer : public Tokenizer {
 public:
  static CharTokenizer from_text(std::string_view text);
  explicit CharTokenizer(std::vector<uint8_t> vocab);
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  std::string kind() const override { return "char"; }

 protected:
  std::string to_json() const override;

 private:
  std::vector<uint8_t> vocab_;       // id -> byte
  std::vector<int32_t> id_of_{};     // byte -> id or -1
};

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  int64_t vocab_size() const override { return 256; }
  std::string kind() const override { return "byte"; }

 protected:
  std::string to_json() const override;
};

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// kind: "char" (built from `text`) or "byte".
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, std::string_view text);

std::string read_text_file(const std::string& path);

}  // namespace zt
