// Byte-level BPE (GPT-2, Llama 3, Qwen2, tiktoken's cl100k): text is cut into pieces by a
// pre-tokenizer pattern, each piece's bytes start as one token each, and adjacent pairs merge
// lowest rank first (leftmost on ties) until no pair has a merge. Ids equal the reference
// tokenizers' for the files bpe_files.h reads.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/data/pretokenize.h"
#include "core/data/tokenizer.h"

namespace zt {

// (left id, right id) -> the merged token and its priority; open addressing over 64-bit keys,
// because this lookup is the inner loop of every merge.
class MergeTable {
 public:
  struct Merge {
    uint32_t rank, id;
  };
  void insert(uint32_t left, uint32_t right, Merge m);
  const Merge* find(uint32_t left, uint32_t right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(uint32_t l, uint32_t r) { return (uint64_t{l} << 32) | r; }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_; }
  void grow();
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0, size_ = 0;
};

// Lets maps keyed by std::string be searched with a string_view, without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Applied to the text between added tokens before pre-tokenizing (HF tokenizer.json "normalizer").
enum class Normalizer : uint8_t { none, nfc };

struct BpeModel {
  std::vector<std::string> tokens;  // id -> bytes ("" for ids no token uses)
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> ids;  // bytes -> id, regular vocabulary only
  MergeTable merges;
  // Matched in the text before pre-tokenizing (Hugging Face added tokens; none for tiktoken).
  std::vector<std::pair<std::string, uint32_t>> added;
  PretokPattern pattern = PretokPattern::gpt2;
  // A piece that is itself a token is emitted whole, merges or not (tiktoken; HF ignore_merges).
  bool whole_piece_first = false;
  Normalizer normalizer = Normalizer::none;
};

// Where a BPE tokenizer was read from, so that saving it copies the same files.
struct BpeSource {
  std::string format;              // "hf" (tokenizer.json), "gpt2" (vocab.json + merges.txt), "tiktoken"
  std::vector<std::string> files;  // hf: {tokenizer.json}; gpt2: {vocab, merges}; tiktoken: {file}
};

class BpeTokenizer : public Tokenizer {
 public:
  BpeTokenizer(BpeModel model, BpeSource source);
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(model_.tokens.size()); }
  std::string kind() const override { return "bpe"; }
  // Copies the source files beside `path` and writes a record naming them (see tokenizer.h).
  void save(const std::string& path) const override;
  const BpeSource& source() const { return source_; }
  PretokPattern pattern() const { return model_.pattern; }
  const BpeModel& model() const { return model_; }

 private:
  void encode_ordinary(std::string_view text, std::vector<uint32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<uint32_t>& out) const;
  void merge_piece(std::string_view piece, std::vector<uint32_t>& out) const;
  std::vector<std::string> saved_names(const std::string& path) const;

  BpeModel model_;
  BpeSource source_;
  int32_t byte_id_[256];
  bool added_starts_[256] = {};
  uint64_t serial_;  // tells this tokenizer's entries in the per-thread piece cache apart
};

}  // namespace zt
