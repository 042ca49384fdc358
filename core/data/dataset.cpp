#include "core/data/dataset.h"

#include <filesystem>

#include "core/data/tokenizer.h"
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

namespace {

PreparedText prepare_loaded_text(const std::string& text_path, const std::string& text, const Tokenizer& tok,
                                 const std::string& out_dir, double val_fraction) {
  if (!(val_fraction >= 0 && val_fraction < 1)) fail("val fraction must be in [0, 1), got {}", val_fraction);
  if (text.empty()) fail("{}: the text file is empty", text_path);
  const std::vector<uint32_t> ids = tok.encode(text);
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t split = train_split_end(n, val_fraction);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) fail("cannot create output directory {}: {}", out_dir, ec.message());
  PreparedText p = prepared_paths(text_path, out_dir, val_fraction);
  p.train_tokens = split;
  p.val_tokens = n - split;
  p.vocab_size = tok.vocab_size();
  if (split == n) p.val_path.clear();
  // All three files or none: a failure part way removes what this call already wrote.
  std::vector<std::string> written;
  try {
    write_token_file(p.train_path, std::span<const uint32_t>(ids.data(), split));
    written.push_back(p.train_path);
    if (!p.val_path.empty()) {
      write_token_file(p.val_path, std::span<const uint32_t>(ids.data() + split, n - split));
      written.push_back(p.val_path);
    }
    tok.save(p.vocab_path);
  } catch (...) {
    for (const auto& path : written) std::filesystem::remove(path, ec);
    throw;
  }
  // A val split from an earlier run with another fraction or tokenizer would no longer match.
  if (p.val_path.empty()) std::filesystem::remove(prepared_paths(text_path, out_dir, 0.5).val_path, ec);
  return p;
}

}  // namespace

PreparedText prepare_text(const std::string& text_path, const Tokenizer& tokenizer,
                          const std::string& out_dir, double val_fraction) {
  return prepare_loaded_text(text_path, read_text_file(text_path), tokenizer, out_dir, val_fraction);
}

PreparedText prepare_text(const std::string& text_path, const std::string& kind, const std::string& out_dir,
                          double val_fraction) {
  const std::string text = read_text_file(text_path);
  const auto tokenizer = make_tokenizer(kind, text);
  return prepare_loaded_text(text_path, text, *tokenizer, out_dir, val_fraction);
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
