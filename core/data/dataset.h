// Fixed-length training samples over a token range: sample i is tokens[i*T, i*T + T + 1),
// inputs the first T, targets the same window shifted by one.
#pragma once
#include <memory>
#include <span>
#include <string>

#include "core/data/token_file.h"
#include "core/tensor.h"

namespace zt {

class TokenDataset {
 public:
  // Tokens [begin, end) of `file`; `what` names the split in errors ("train", "val").
  TokenDataset(std::shared_ptr<const TokenFile> file, int64_t begin, int64_t end, int64_t T,
               const std::string& what);
  int64_t num_samples() const { return (end_ - begin_ - 1) / T_; }
  int64_t seq_len() const { return T_; }
  // inputs and targets are (B, T) i32 with B = sample_ids.size().
  void fill_batch(std::span<const int64_t> sample_ids, Tensor& inputs, Tensor& targets) const;

 private:
  std::shared_ptr<const TokenFile> file_;
  int64_t begin_, end_, T_;
};

// Where train ends when the last `val_fraction` of n tokens is held out for validation.
inline int64_t train_split_end(int64_t n_tokens, double val_fraction) {
  return n_tokens - static_cast<int64_t>(static_cast<double>(n_tokens) * val_fraction);
}

}  // namespace zt
