#include "core/data/dataset.h"

#include <filesystem>

#include "core/data/tokenizer.h"
#include "core/error.h"

namespace zt {

TokenDataset::TokenDataset(std::shared_ptr<const TokenFile> file, int64_t begin, int64_t end,
                           int64_t T, const std::string& what)
    : file_(std::move(file)), begin_(begin), end_(end), T_(T) {
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

PreparedText prepare_text(const std::string& text_path, const Tokenizer& tok,
                          const std::string& out_dir, double val_fraction) {
  if (val_fraction < 0 || val_fraction >= 1) fail("val fraction must be in [0, 1), got {}", val_fraction);
  const std::string text = read_text_file(text_path);
  if (text.empty()) fail("{}: the text file is empty", text_path);
  const std::vector<uint32_t> ids = tok.encode(text);
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t split = train_split_end(n, val_fraction);

  std::filesystem::create_directories(out_dir);
  PreparedText p = prepared_paths(text_path, out_dir, val_fraction);
  p.train_tokens = split;
  p.val_tokens = n - split;
  p.vocab_size = tok.vocab_size();
  write_token_file(p.train_path, std::span<const uint32_t>(ids.data(), split));
  if (split < n) {
    write_token_file(p.val_path, std::span<const uint32_t>(ids.data() + split, n - split));
  }
  if (split == n) p.val_path.clear();
  tok.save(p.vocab_path);
  return p;
}

PreparedText prepared_paths(const std::string& text_path, const std::string& out_dir, double val_fraction) {
  namespace fs = std::filesystem;
  const std::string stem = (fs::path(out_dir) / fs::path(text_path).stem()).string();
  PreparedText p;
  p.train_path = stem + ".train.bin";
  p.vocab_path = stem + ".vocab.json";
  if (val_fraction > 0) p.val_path = stem + ".val.bin";
  return p;
}

}  // namespace zt
