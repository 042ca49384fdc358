#include "launch/train_data.h"

#include <cstring>
#include <filesystem>

#include "core/data/token_shards.h"
#include "core/error.h"
#include "core/fileio.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

// The one text file a tokenized run reads; directories, globs and lists name token shards.
const std::string& single_text(const std::vector<std::string>& spec, const char* key, const std::string& tokenizer) {
  if (names_several_files(spec))
    fail("{}: {} names several files (a directory, glob or list), which is read as token shards and needs "
         "data.tokenizer: none (got '{}'); turn text into shards with `zt data prepare`", key, spec[0], tokenizer);
  if (!fs::is_regular_file(spec[0])) fail("{}: file not found: {}", key, spec[0]);
  return spec[0];
}

// The tokenizer saved beside the token files by `zt data prepare`, if any; every shard that
// has one must have the same one.
std::unique_ptr<Tokenizer> tokenizer_beside(const std::vector<std::string>& files) {
  std::string first_path, first_text;
  for (const auto& f : files) {
    const std::string vocab = vocab_beside(f);
    if (!fs::is_regular_file(vocab)) continue;
    if (first_path.empty()) {
      first_path = vocab;
      first_text = read_text_file(vocab);
    } else if (vocab != first_path && read_text_file(vocab) != first_text) {
      fail("{}: its tokenizer {} differs from {}: the shards were prepared with different tokenizers", f, vocab,
           first_path);
    }
  }
  return first_path.empty() ? nullptr : load_tokenizer(first_path);
}

// Token files as datasets: train, and val from data.val or the last data.val_fraction of the
// train tokens (over all shards, in order); val null when there is none.
void open_token_datasets(const DataConfig& data, int64_t vocab, const std::vector<std::string>& train_files,
                         const std::vector<std::string>& val_files, TrainData& out) {
  const auto train = open_token_files(train_files, vocab, data.format);
  const int64_t T = data.seq_len;
  if (!val_files.empty()) {
    const auto whole = [](const std::vector<std::shared_ptr<const TokenFile>>& files) {
      std::vector<TokenRange> ranges;
      for (const auto& f : files) ranges.push_back({f, 0, f->size()});
      return ranges;
    };
    out.train = std::make_unique<TokenDataset>(whole(train), T, "train");
    out.val = std::make_unique<TokenDataset>(whole(open_token_files(val_files, vocab, data.format)), T, "val");
    return;
  }
  int64_t n = 0;
  for (const auto& f : train) n += f->size();
  SplitRanges split = split_token_files(train, train_split_end(n, data.val_fraction));
  out.train = std::make_unique<TokenDataset>(std::move(split.before), T, "train");
  if (!split.after.empty()) out.val = std::make_unique<TokenDataset>(std::move(split.after), T, "val (data.val_fraction)");
}

std::string describe_files(const std::vector<std::string>& files) {
  if (files.size() == 1) return files[0];
  return fmt::format("{} shards, {} ... {}", files.size(), files.front(), files.back());
}

}  // namespace

DataPlan plan_data(const DataConfig& data, int64_t model_vocab) {
  DataPlan plan;
  const TokenizerKind kind = data.tokenizer_kind();
  if (kind != TokenizerKind::none) {
    plan.train_files = {single_text(data.train, "data.train", data.tokenizer)};
    if (!data.val.empty()) plan.val_files = {single_text(data.val, "data.val", data.tokenizer)};
    if (kind == TokenizerKind::file && !fs::exists(data.tokenizer))
      fail("data.tokenizer: file not found: {}", data.tokenizer);
    try {
      plan.tokenizer = tokenizer_for_inputs(data.tokenizer, plan.train_files);
    } catch (const Error& e) {
      fail("{}: {}", kind == TokenizerKind::file ? "data.tokenizer" : "data.train", e.what());
    }
    if (!data.val.empty()) {
      try {
        plan.tokenizer->encode(read_text_file(plan.val_files[0]));
      } catch (const Error& e) {
        fail("data.val: {}: {}", plan.val_files[0], e.what());
      }
    }
  } else {
    plan.train_files = resolve_token_files(data.train, "data.train", "train");
    if (!data.val.empty()) plan.val_files = resolve_token_files(data.val, "data.val", "val");
    std::vector<std::string> all = plan.train_files;
    all.insert(all.end(), plan.val_files.begin(), plan.val_files.end());
    plan.tokenizer = tokenizer_beside(all);
    if (!plan.tokenizer && model_vocab == 0)
      fail("model.vocab_size is required when data.tokenizer is none and no vocab file is found "
           "beside data.train (looked for {})", vocab_beside(plan.train_files[0]));
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
  if (kind == TokenizerKind::none) {
    TrainData opened;
    open_token_datasets(data, plan.vocab_size, plan.train_files, plan.val_files, opened);
    plan.summary = fmt::format("train {} ({} samples of {} tokens)", describe_files(plan.train_files),
                               opened.train->num_samples(), data.seq_len);
    if (opened.val)
      plan.summary += fmt::format("; val {} ({} samples)",
                                  plan.val_files.empty() ? "the last data.val_fraction of train" : describe_files(plan.val_files),
                                  opened.val->num_samples());
    return plan;
  }
  // Text: its byte count bounds its token count from above, and the text is not encoded yet.
  const auto n = static_cast<int64_t>(fs::file_size(plan.train_files[0]));
  if (!data.val.empty()) {
    check_split(n, plan.train_files[0], "train");
    check_split(static_cast<int64_t>(fs::file_size(plan.val_files[0])), plan.val_files[0], "val");
  } else {
    const int64_t split = train_split_end(n, data.val_fraction);
    check_split(split, plan.train_files[0], "train");
    if (split < n) check_split(n - split, plan.train_files[0], "val (data.val_fraction)");
  }
  plan.summary = fmt::format("train text {} ({} bytes, {} tokenizer){}", plan.train_files[0], n,
                             plan.tokenizer->kind(), data.val.empty() ? "" : "; val text " + plan.val_files[0]);
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
  const fs::path vocab = fs::path(run_dir) / "vocab.json";
  if (data.tokenizer_kind() == TokenizerKind::none) {
    open_token_datasets(data, plan.vocab_size, plan.train_files, plan.val_files, out);
    if (out.tokenizer && write) out.tokenizer->save(vocab.string());
    return out;
  }
  const int64_t T = data.seq_len;
  const std::string& train_text = plan.train_files[0];
  const std::string dir = (fs::path(run_dir) / "data").string();
  const double fraction = data.val.empty() ? data.val_fraction : 0.0;
  bool reused = false;
  PreparedText p = write ? prepare_or_reuse(train_text, *out.tokenizer, data, dir, fraction, &reused)
                         : prepared_paths(train_text, dir, fraction);
  bool reused_all = reused;  // every prepared file came from an earlier run of this directory
  auto train = std::make_shared<TokenFile>(TokenFile::open(p.train_path));
  std::shared_ptr<TokenFile> val;
  if (!p.val_path.empty() && fs::exists(p.val_path)) val = std::make_shared<TokenFile>(TokenFile::open(p.val_path));
  if (!data.val.empty()) {
    // Its own folder: a val text with the train text's file name must not overwrite it.
    const std::string val_dir = (fs::path(dir) / "val").string();
    PreparedText pv = write ? prepare_or_reuse(plan.val_files[0], *out.tokenizer, data, val_dir, 0.0, &reused)
                            : prepared_paths(plan.val_files[0], val_dir, 0.0);
    reused_all = reused_all && reused;
    val = std::make_shared<TokenFile>(TokenFile::open(pv.train_path));
  }
  if (write && (!reused_all || !fs::exists(vocab))) out.tokenizer->save(vocab.string());
  out.train = std::make_unique<TokenDataset>(train, 0, train->size(), T, "train");
  if (val) out.val = std::make_unique<TokenDataset>(val, 0, val->size(), T, "val");
  return out;
}

}  // namespace zt
