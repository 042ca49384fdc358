// Tokenizers for text corpora: char-level (the distinct Unicode code points of the training
// text), byte-level (256 ids) and byte-level BPE read from a Hugging Face tokenizer.json,
// GPT-2's vocab.json + merges.txt or a tiktoken file (bpe.h).
//
// A tokenizer is saved as a small JSON record (a run's vocab.json, or <stem>.vocab.json
// beside prepared token files): {"kind": "char", "unit": "codepoint", "vocab": [...]},
// {"kind": "byte"}, or {"kind": "bpe", "format": ..., "files": [...]} naming copies of the
// BPE files saved next to it.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<uint32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const uint32_t> ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string kind() const = 0;  // "char", "byte" or "bpe"
  // Writes the record at `path` (atomic: temp file + rename), and any files it names.
  virtual void save(const std::string& path) const = 0;
};

class CharTokenizer : public Tokenizer {
 public:
  // The distinct code points of the UTF-8 text, ascending; malformed UTF-8 is an error.
  static CharTokenizer from_text(std::string_view text);
  explicit CharTokenizer(std::vector<uint32_t> vocab);
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  std::string kind() const override { return "char"; }
  void save(const std::string& path) const override;
  const std::vector<uint32_t>& vocab() const { return vocab_; }

 private:
  std::vector<uint32_t> vocab_;                   // id -> code point
  std::vector<int32_t> ascii_id_;                 // code point < 128 -> id or -1
  std::unordered_map<uint32_t, uint32_t> id_of_;  // other code points -> id
};

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  int64_t vocab_size() const override { return 256; }
  std::string kind() const override { return "byte"; }
  void save(const std::string& path) const override;
};

// The distinct code points of `text` merged into `seen` (sorted); malformed UTF-8 is an
// error naming `what` and the byte offset (plus `offset`).
void collect_code_points(std::string_view text, std::vector<uint32_t>& seen, const std::string& what,
                         int64_t offset = 0);

// Reads a saved record (see above), or a tokenizer file: a Hugging Face tokenizer.json,
// GPT-2's vocab.json (merges.txt beside it) or merges.txt (vocab.json beside it), a
// .tiktoken file, or a directory holding one of these.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// kind: "char" (built from `text`), "byte", or a path load_tokenizer reads.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, std::string_view text);

std::string read_text_file(const std::string& path);
// Writes `content` to a temp file beside `path` and renames it over `path`.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace zt
