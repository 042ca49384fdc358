#include "core/data/dataset.h"

#include "core/error.h"

namespace zt {

TokenDataset::TokenDataset(std::shared_ptr<const TokenFile> file, int64_t begin, int64_t end,
                           int64_t T, const std::string& what)
    : file_(std::move(file)), begin_(begin), end_(end), T_(T) {
  ZT_CHECK(T > 0 && 0 <= begin && begin <= end && end <= file_->size(), "range [{}, {}) of {} tokens, T {}",
           begin, end, file_->size(), T);
  if (end - begin < T + 1)
    fail("{}: the {} split has {} tokens, fewer than one sample of data.seq_len {} + 1", file_->path(),
         what, end - begin, T);
}

void TokenDataset::fill_batch(std::span<const int64_t> ids, Tensor& inputs, Tensor& targets) const {
  const auto B = static_cast<int64_t>(ids.size());
  ZT_CHECK(inputs.numel() == B * T_ && targets.numel() == B * T_, "batch of {} x {} into {}", B, T_,
           inputs.shape_str());
  int32_t* in = inputs.data<int32_t>();
  int32_t* tg = targets.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    ZT_CHECK(ids[b] >= 0 && ids[b] < num_samples(), "sample {} of {}", ids[b], num_samples());
    const int64_t start = begin_ + ids[b] * T_;
    for (int64_t t = 0; t < T_; ++t) {
      in[b * T_ + t] = static_cast<int32_t>((*file_)[start + t]);
      tg[b * T_ + t] = static_cast<int32_t>((*file_)[start + t + 1]);
    }
  }
}

}  // namespace zt
