#include "core/data/dataset.h"

#include <algorithm>

#include "core/error.h"

namespace zt {

TokenDataset::TokenDataset(std::shared_ptr<const TokenFile> file, int64_t begin, int64_t end, int64_t T,
                           const std::string& what)
    : TokenDataset(std::vector<TokenRange>{{std::move(file), begin, end}}, T, what) {}

TokenDataset::TokenDataset(std::vector<TokenRange> ranges, int64_t T, const std::string& what)
    : ranges_(std::move(ranges)), T_(T) {
  ZT_CHECK(T > 0 && !ranges_.empty(), "{} ranges, T {}", ranges_.size(), T);
  first_sample_.push_back(0);
  int64_t tokens = 0;
  for (const TokenRange& r : ranges_) {
    ZT_CHECK(0 <= r.begin && r.begin <= r.end && r.end <= r.file->size(), "range [{}, {}) of {} tokens", r.begin,
             r.end, r.file->size());
    const int64_t n = r.end - r.begin;
    tokens += n;
    first_sample_.push_back(first_sample_.back() + (n > T ? (n - 1) / T : 0));
  }
  if (num_samples() == 0) {
    if (ranges_.size() == 1)
      fail("{}: the {} split has {} tokens, fewer than one sample of data.seq_len {} + 1", ranges_[0].file->path(),
           what, tokens, T);
    fail("{} ... {}: the {} split's {} files hold {} tokens but no file holds one sample of data.seq_len {} + 1 "
         "(samples never span two files)", ranges_.front().file->path(), ranges_.back().file->path(), what,
         ranges_.size(), tokens, T);
  }
}

void TokenDataset::fill_batch(std::span<const int64_t> ids, Tensor& inputs, Tensor& targets) const {
  const auto B = static_cast<int64_t>(ids.size());
  ZT_CHECK(inputs.numel() == B * T_ && targets.numel() == B * T_, "batch of {} x {} into {}", B, T_,
           inputs.shape_str());
  int32_t* in = inputs.data<int32_t>();
  int32_t* tg = targets.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    ZT_CHECK(ids[b] >= 0 && ids[b] < num_samples(), "sample {} of {}", ids[b], num_samples());
    // The range holding the sample: the last whose first sample is <= the id.
    const auto r = static_cast<size_t>(std::upper_bound(first_sample_.begin(), first_sample_.end(), ids[b]) -
                                       first_sample_.begin() - 1);
    const TokenFile& file = *ranges_[r].file;
    const int64_t start = ranges_[r].begin + (ids[b] - first_sample_[r]) * T_;
    for (int64_t t = 0; t < T_; ++t) {
      in[b * T_ + t] = static_cast<int32_t>(file[start + t]);
      tg[b * T_ + t] = static_cast<int32_t>(file[start + t + 1]);
    }
  }
}

SplitRanges split_token_files(const std::vector<std::shared_ptr<const TokenFile>>& files, int64_t at) {
  SplitRanges out;
  int64_t offset = 0;  // tokens in the files before this one
  for (const auto& f : files) {
    const int64_t cut = std::clamp(at - offset, int64_t{0}, f->size());
    if (cut > 0) out.before.push_back({f, 0, cut});
    if (cut < f->size()) out.after.push_back({f, cut, f->size()});
    offset += f->size();
  }
  return out;
}

}  // namespace zt
