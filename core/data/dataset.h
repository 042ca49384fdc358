// Fixed-length training samples over token ranges: in a range of n tokens, sample i is
// tokens[i*T, i*T + T + 1), inputs the first T, targets the same window shifted by one. Several
// ranges (token shards, in order) form one dataset: their samples are numbered one range after
// the other, and no sample spans two ranges; the tail of each range shorter than one window is
// not read.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/data/token_file.h"
#include "core/tensor.h"

namespace zt {

// Tokens [begin, end) of one file.
struct TokenRange {
  std::shared_ptr<const TokenFile> file;
  int64_t begin = 0, end = 0;
};

class TokenDataset {
 public:
  // Tokens [begin, end) of `file`; `what` names the split in errors ("train", "val").
  TokenDataset(std::shared_ptr<const TokenFile> file, int64_t begin, int64_t end, int64_t T,
               const std::string& what);
  // Several ranges read as one; fails when together they hold no sample.
  TokenDataset(std::vector<TokenRange> ranges, int64_t T, const std::string& what);
  int64_t num_samples() const { return first_sample_.back(); }
  int64_t seq_len() const { return T_; }
  int64_t num_ranges() const { return static_cast<int64_t>(ranges_.size()); }  // files, for shards
  // inputs and targets are (B, T) i32 with B = sample_ids.size().
  void fill_batch(std::span<const int64_t> sample_ids, Tensor& inputs, Tensor& targets) const;

 private:
  std::vector<TokenRange> ranges_;
  std::vector<int64_t> first_sample_;  // first_sample_[r]: the id of range r's first sample; back() = total
  int64_t T_;
};

// Where train ends when the last `val_fraction` of n tokens is held out for validation.
inline int64_t train_split_end(int64_t n_tokens, double val_fraction) {
  return n_tokens - static_cast<int64_t>(static_cast<double>(n_tokens) * val_fraction);
}

// Files read one after the other, cut at token `at` of the whole (the train/val split over
// shards): ranges before and after it; a side holding no tokens is empty.
struct SplitRanges {
  std::vector<TokenRange> before, after;
};
SplitRanges split_token_files(const std::vector<std::shared_ptr<const TokenFile>>& files, int64_t at);

}  // namespace zt
