#include "core/data/prepare.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/data/dataset.h"
#include "core/data/shard_writer.h"
#include "core/data/token_file.h"
#include "core/data/tokenizer.h"
#include "core/error.h"

namespace zt {

namespace fs = std::filesystem;

namespace {

bool plain_ascii(char c) { return c > ' ' && c < 127; }

// Reads one file in chunks that end just after a newline with a plain ASCII character on both
// sides. Every pre-tokenizer cuts there anyway (the newline is a piece of its own or ends the
// piece before it, and no pattern looks behind), so encoding chunk by chunk gives the ids of
// encoding the whole file. A chunk with no such place grows until one comes or the file ends.
class ChunkReader {
 public:
  ChunkReader(const std::string& path, int64_t chunk_bytes) : path_(path), in_(path, std::ios::binary), chunk_(chunk_bytes) {
    if (!in_) fail("cannot read {}", path);
  }
  // The next chunk, or nullopt at the end of the file.
  std::optional<std::string> next() {
    std::string buf = std::move(carry_);
    carry_.clear();
    size_t searched = 0;
    while (true) {
      if (!eof_) {
        const size_t old = buf.size();
        buf.resize(old + static_cast<size_t>(chunk_));
        in_.read(buf.data() + old, chunk_);
        buf.resize(old + static_cast<size_t>(in_.gcount()));
        if (in_.bad()) fail("error reading {}", path_);
        eof_ = in_.eof();
      }
      if (eof_) {
        if (buf.empty()) return std::nullopt;
        return buf;
      }
      for (size_t s = buf.empty() ? 0 : buf.size() - 1; s >= searched + 2 && s >= 2; --s)
        if (buf[s - 1] == '\n' && plain_ascii(buf[s - 2]) && plain_ascii(buf[s])) {
          carry_.assign(buf, s);
          buf.resize(s);
          return buf;
        }
      searched = buf.size() > 2 ? buf.size() - 2 : 0;
    }
  }

 private:
  std::string path_;
  std::ifstream in_;
  int64_t chunk_;
  std::string carry_;
  bool eof_ = false;
};

// "prepare: 12.3 / 45.6 MB (27%)  27.1 MB/s" on stderr, for inputs that take over a second.
class Progress {
 public:
  Progress(bool enabled, int64_t total_bytes) : enabled_(enabled), total_(total_bytes), start_(now()), last_(start_) {}
  void update(int64_t done_bytes, bool last = false) {
    if (!enabled_) return;
    const double t = now();
    // A log file gets a line every 10 s, a terminal an updated line every second.
    if (!last && (t - last_ < (tty_ ? 1.0 : 10.0) || t - start_ < 1.0)) return;
    if (last && !shown_) return;
    last_ = t;
    shown_ = true;
    const double mb = static_cast<double>(done_bytes) / 1e6, rate = mb / std::max(t - start_, 1e-9);
    std::fprintf(stderr, "%sprepare: %.1f / %.1f MB (%.0f%%)  %.1f MB/s%s", tty_ ? "\r" : "", mb,
                 static_cast<double>(total_) / 1e6, total_ > 0 ? 100.0 * static_cast<double>(done_bytes) / static_cast<double>(total_) : 100.0,
                 rate, tty_ && !last ? "   " : "\n");
    std::fflush(stderr);
  }

 private:
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  bool enabled_;
  bool tty_ = isatty(fileno(stderr)) != 0;
  bool shown_ = false;
  int64_t total_;
  double start_, last_;
};

void check_inputs(const std::vector<std::string>& inputs) {
  if (inputs.empty()) fail("no input text files");
  for (const auto& p : inputs)
    if (!fs::is_regular_file(p)) fail("text file not found: {}", p);
}

}  // namespace

PreparedText prepared_paths(const std::string& text_path, const std::string& out_dir, double val_fraction) {
  const std::string stem = (fs::path(out_dir) / fs::path(text_path).stem()).string();
  PreparedText p;
  p.train_path = stem + ".train.bin";
  p.vocab_path = stem + ".vocab.json";
  if (val_fraction > 0) p.val_path = stem + ".val.bin";
  return p;
}

PreparedText prepare_corpus(const Tokenizer& tok, const PrepareOptions& o) {
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) fail("val fraction must be in [0, 1), got {}", o.val_fraction);
  check_inputs(o.inputs);
  int64_t total = 0;
  for (const auto& p : o.inputs) total += static_cast<int64_t>(fs::file_size(p));
  if (total == 0)
    fail("{}: the text file{} empty", o.inputs.size() == 1 ? o.inputs[0] : "the inputs", o.inputs.size() == 1 ? " is" : "s are");
  const std::string name = o.name.empty() ? fs::path(o.inputs[0]).stem().string() : o.name;
  PreparedText p = prepared_paths(name + ".txt", o.out_dir, o.val_fraction);
  p.vocab_size = tok.vocab_size();
  p.text_bytes = total;

  const bool made_dir = !fs::exists(o.out_dir);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) fail("cannot create output directory {}: {}", o.out_dir, ec.message());
  std::vector<std::string> written;
  try {
    const int bits = token_bits_for_vocab(tok.vocab_size());
    if (o.shard_tokens < 0) fail("tokens per shard must be >= 0 (0 = one file), got {}", o.shard_tokens);
    const std::string stem = (fs::path(o.out_dir) / name).string();
    ShardWriter train(stem, "train", bits, o.shard_tokens);
    Progress progress(o.progress, total);
    int64_t done = 0;
    const int batch = std::max(1, 2 * omp_get_max_threads());
    for (const auto& input : o.inputs) {
      ChunkReader reader(input, o.chunk_bytes);
      int64_t offset = 0;
      for (bool more = true; more;) {
        std::vector<std::string> chunks;
        std::vector<int64_t> offsets;
        while (static_cast<int>(chunks.size()) < batch) {
          std::optional<std::string> c = reader.next();
          if (!c) {
            more = false;
            break;
          }
          offsets.push_back(offset);
          offset += static_cast<int64_t>(c->size());
          chunks.push_back(std::move(*c));
        }
        std::vector<std::vector<uint32_t>> ids(chunks.size());
        std::vector<std::string> errors(chunks.size());
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t i = 0; i < chunks.size(); ++i) {
          try {
            ids[i] = tok.encode(chunks[i]);
          } catch (const std::exception& e) {
            errors[i] = e.what();
          }
        }
        for (size_t i = 0; i < chunks.size(); ++i) {
          if (!errors[i].empty()) fail("{}: {} (in the chunk from byte {})", input, errors[i], offsets[i]);
          train.append(ids[i]);
          done += static_cast<int64_t>(chunks[i].size());
        }
        progress.update(done);
      }
    }
    progress.update(done, true);
    const int64_t n = train.count();
    const int64_t split = train_split_end(n, o.val_fraction);
    p.train_tokens = split;
    p.val_tokens = n - split;
    if (split == n) p.val_path.clear();
    std::optional<TokenFileWriter> val;
    if (!p.val_path.empty()) {
      val.emplace(p.val_path, bits);
      train.move_tail(n - split, *val);
    }
    p.train_shards = train.commit();
    p.train_path = p.train_shards.front();
    written.insert(written.end(), p.train_shards.begin(), p.train_shards.end());
    if (val) {
      val->commit();
      written.push_back(p.val_path);
    }
    tok.save(p.vocab_path);
  } catch (...) {
    for (const auto& path : written) fs::remove(path, ec);
    if (made_dir && fs::is_empty(o.out_dir, ec)) fs::remove(o.out_dir, ec);
    throw;
  }
  if (p.val_path.empty()) fs::remove(prepared_paths(name + ".txt", o.out_dir, 0.5).val_path, ec);
  remove_stale_shards((fs::path(o.out_dir) / name).string(), "train", p.train_shards);
  return p;
}

std::unique_ptr<Tokenizer> char_tokenizer_of_files(const std::vector<std::string>& inputs) {
  check_inputs(inputs);
  std::vector<uint32_t> vocab;
  for (const auto& path : inputs) {
    ChunkReader reader(path, int64_t{1} << 24);
    int64_t offset = 0;
    while (std::optional<std::string> c = reader.next()) {
      collect_code_points(*c, vocab, path, offset);
      offset += static_cast<int64_t>(c->size());
    }
  }
  if (vocab.empty()) fail("{}: the text file is empty", inputs[0]);
  return std::make_unique<CharTokenizer>(std::move(vocab));
}

std::unique_ptr<Tokenizer> tokenizer_for_inputs(const std::string& kind, const std::vector<std::string>& inputs) {
  if (kind == "char") return char_tokenizer_of_files(inputs);
  return make_tokenizer(kind, "");
}

PreparedText prepare_text(const std::string& text_path, const Tokenizer& tokenizer, const std::string& out_dir,
                          double val_fraction) {
  PrepareOptions o;
  o.inputs = {text_path};
  o.out_dir = out_dir;
  o.val_fraction = val_fraction;
  return prepare_corpus(tokenizer, o);
}

PreparedText prepare_text(const std::string& text_path, const std::string& kind, const std::string& out_dir,
                          double val_fraction) {
  const auto tokenizer = tokenizer_for_inputs(kind, {text_path});
  return prepare_text(text_path, *tokenizer, out_dir, val_fraction);
}

}  // namespace zt
