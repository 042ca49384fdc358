#include "launch/train_data.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/fileio.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

// "x/corpus.train.bin" -> "x/corpus.vocab.json", as written by `zt data prepare`.
std::string vocab_beside(const std::string& token_file) {
  fs::path p(token_file);
  std::string stem = p.stem().string();
  for (const char* split : {".train", ".val"})
    if (stem.size() > std::strlen(split) && stem.ends_with(split)) stem.resize(stem.size() - std::strlen(split));
  return (p.parent_path() / (stem + ".vocab.json")).string();
}

void require_file(const std::string& path, const char* key) {
  if (!fs::is_regular_file(path)) fail("{}: file not found: {}", key, path);
}

}  // namespace

DataPlan plan_data(const DataConfig& data, int64_t model_vocab) {
  DataPlan plan;
  require_file(data.train, "data.train");
  if (!data.val.empty()) require_file(data.val, "data.val");
  const TokenizerKind kind = data.tokenizer_kind();
  if (kind == TokenizerKind::file && !fs::exists(data.tokenizer))
    fail("data.tokenizer: file not found: {}", data.tokenizer);
  if (kind != TokenizerKind::none) {
    try {
      plan.tokenizer = tokenizer_for_inputs(data.tokenizer, {data.train});
    } catch (const Error& e) {
      fail("{}: {}", kind == TokenizerKind::file ? "data.tokenizer" : "data.train", e.what());
    }
    if (!data.val.empty()) {
      try {
        plan.tokenizer->encode(read_text_file(data.val));
      } catch (const Error& e) {
        fail("data.val: {}: {}", data.val, e.what());
      }
    }
  } else {
    const std::string vocab_file = vocab_beside(data.train);
    if (fs::exists(vocab_file)) plan.tokenizer = load_tokenizer(vocab_file);
    if (!plan.tokenizer && model_vocab == 0)
      fail("model.vocab_size is required when data.tokenizer is none and no vocab file is found "
           "beside data.train (looked for {})", vocab_file);
  }
  const int64_t tokenizer_vocab = plan.tokenizer ? plan.tokenizer->vocab_size() : 0;
  if (model_vocab > 0 && model_vocab < tokenizer_vocab)
    fail("model.vocab_size ({}) is smaller than the {} tokenizer's vocabulary ({})", model_vocab,
         plan.tokenizer->kind(), tokenizer_vocab);
  plan.vocab_size = model_vocab > 0 ? model_vocab : tokenizer_vocab;
  // Every split must hold at least one sample, and every id must fit the model.
  auto check_split = [&](int64_t tokens, const std::string& path, const char* what) {
    if (tokens < data.seq_len + 1)
      fail("{}: the {} split has {} tokens, fewer than one sample of data.seq_len {} + 1", path, what,
           tokens, data.seq_len);
  };
  auto token_count = [&](const std::string& path) {
    return kind == TokenizerKind::none ? TokenFile::open(path, plan.vocab_size, data.format).size()
                                                 : static_cast<int64_t>(fs::file_size(path));
  };
  const int64_t n = token_count(data.train);
  if (!data.val.empty()) {
    check_split(n, data.train, "train");
    check_split(token_count(data.val), data.val, "val");
  } else {
    const int64_t split = train_split_end(n, data.val_fraction);
    check_split(split, data.train, "train");
    if (split < n) check_split(n - split, data.train, "val (data.val_fraction)");
  }
  return plan;
}

namespace {

// What a prepared text was made from: the text's and the tokenizer file's size and
// modification time, and the val fraction. A later run (a resume) that finds the same stamp
// beside the prepared files reuses them instead of writing them again.
std::string source_stamp(const std::string& text_path, const DataConfig& data, double fraction) {
  auto describe = [](const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
    return fmt::format("{} {} {}", fs::absolute(path).string(), ec ? -1 : static_cast<int64_t>(size), ec ? 0 : mtime);
  };
  const bool tokenizer_file = data.tokenizer_kind() == TokenizerKind::file;
  return fmt::format("text {}\ntokenizer {}\nval_fraction {}\n", describe(text_path),
                     tokenizer_file ? describe(data.tokenizer) : data.tokenizer, fraction);
}

// Tokenizes text_path into dir, or reuses what an earlier run of this directory prepared
// from the same source; *reused says which.
PreparedText prepare_or_reuse(const std::string& text_path, const Tokenizer& tokenizer, const DataConfig& data,
                              const std::string& dir, double fraction, bool* reused) {
  PreparedText p = prepared_paths(text_path, dir, fraction);
  const std::string stamp_path = p.train_path + ".source";
  const std::string stamp = source_stamp(text_path, data, fraction);
  std::error_code ec;
  *reused = fs::is_regular_file(p.train_path, ec) && (p.val_path.empty() || fs::is_regular_file(p.val_path, ec)) &&
            fs::is_regular_file(stamp_path, ec) && read_text_file(stamp_path) == stamp;
  if (*reused) return p;
  p = prepare_text(text_path, tokenizer, dir, fraction);
  write_file_atomic(stamp_path, stamp);
  return p;
}

}  // namespace

TrainData materialize_data(DataPlan plan, const DataConfig& data, const std::string& run_dir, bool write) {
  TrainData out;
  out.tokenizer = std::move(plan.tokenizer);
  const int64_t T = data.seq_len;
  std::shared_ptr<TokenFile> train, val;
  int64_t train_end = -1;
  bool reused_all = false;  // every prepared file came from an earlier run of this directory
  if (data.tokenizer_kind() != TokenizerKind::none) {
    const std::string dir = (fs::path(run_dir) / "data").string();
    const double fraction = data.val.empty() ? data.val_fraction : 0.0;
    bool reused = false;
    PreparedText p = write ? prepare_or_reuse(data.train, *out.tokenizer, data, dir, fraction, &reused)
                           : prepared_paths(data.train, dir, fraction);
    reused_all = reused;
    train = std::make_shared<TokenFile>(TokenFile::open(p.train_path));
    if (!p.val_path.empty() && fs::exists(p.val_path)) val = std::make_shared<TokenFile>(TokenFile::open(p.val_path));
    if (!data.val.empty()) {
      // Its own folder: a val text with the train text's file name must not overwrite it.
      const std::string val_dir = (fs::path(dir) / "val").string();
      PreparedText pv = write ? prepare_or_reuse(data.val, *out.tokenizer, data, val_dir, 0.0, &reused)
                              : prepared_paths(data.val, val_dir, 0.0);
      reused_all = reused_all && reused;
      val = std::make_shared<TokenFile>(TokenFile::open(pv.train_path));
    }
  } else {
    train = std::make_shared<TokenFile>(TokenFile::open(data.train, plan.vocab_size, data.format));
    if (!data.val.empty()) {
      val = std::make_shared<TokenFile>(TokenFile::open(data.val, plan.vocab_size, data.format));
    } else if (data.val_fraction > 0) {
      train_end = train_split_end(train->size(), data.val_fraction);
      val = train;
    }
  }
  const fs::path vocab = fs::path(run_dir) / "vocab.json";
  if (out.tokenizer && write && (!reused_all || !fs::exists(vocab))) out.tokenizer->save(vocab.string());
  const int64_t end = train_end >= 0 ? train_end : train->size();
  out.train = std::make_unique<TokenDataset>(train, 0, end, T, "train");
  if (val) out.val = std::make_unique<TokenDataset>(val, train_end >= 0 ? train_end : 0, val->size(), T, "val");
  return out;
}

}  // namespace zt
