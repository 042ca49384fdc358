#include "core/data/token_shards.h"

#include <glob.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

bool is_glob(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos && !fs::exists(path);
}

std::vector<std::string> glob_files(const std::string& pattern, std::string_view key) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i)
      if (fs::is_regular_file(g.gl_pathv[i])) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) fail("{}: cannot expand the glob {}", key, pattern);
  if (out.empty()) fail("{}: no file matches the glob {}", key, pattern);
  std::sort(out.begin(), out.end());
  return out;
}

// The directory's .bin files whose name holds the split: prepare writes both splits side
// by side (name.train.000000.bin, name.val.bin), as llm.c does (fineweb_train_000001.bin).
std::vector<std::string> shards_in(const std::string& dir, std::string_view key, std::string_view split) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && entry.path().extension() == ".bin" && name.find(split) != std::string::npos)
      out.push_back(entry.path().string());
  }
  if (ec) fail("{}: cannot list the directory {}: {}", key, dir, ec.message());
  if (out.empty()) fail("{}: the directory {} holds no {} shards (.bin files with '{}' in the name)", key, dir, split, split);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> resolve_token_files(const std::vector<std::string>& spec, std::string_view key,
                                             std::string_view split) {
  std::vector<std::string> files;
  for (const std::string& entry : spec) {
    if (is_glob(entry)) {
      for (auto& f : glob_files(entry, key)) files.push_back(std::move(f));
    } else if (fs::is_directory(entry)) {
      for (auto& f : shards_in(entry, key, split)) files.push_back(std::move(f));
    } else if (fs::is_regular_file(entry)) {
      files.push_back(entry);
    } else {
      fail("{}: file not found: {}", key, entry);
    }
  }
  if (files.empty()) fail("{}: no file given", key);
  std::set<std::string> seen;
  for (const auto& f : files)
    if (!seen.insert(fs::weakly_canonical(f).string()).second)
      fail("{}: {} is named twice (a list entry repeats a file or overlaps a glob or directory)", key, f);
  return files;
}

bool names_several_files(const std::vector<std::string>& spec) {
  return spec.size() > 1 || (spec.size() == 1 && (is_glob(spec[0]) || fs::is_directory(spec[0])));
}

std::vector<std::shared_ptr<const TokenFile>> open_token_files(const std::vector<std::string>& paths,
                                                               int64_t vocab_size, TokenFormat format) {
  std::vector<std::shared_ptr<const TokenFile>> files;
  for (const auto& path : paths) {
    files.push_back(std::make_shared<const TokenFile>(TokenFile::open(path, vocab_size, format)));
    if (files.back()->bits() != files.front()->bits())
      fail("{}: holds uint{} tokens but {} holds uint{}; all shards of a split must have one token width "
           "(prepare them with the same tokenizer)", path, files.back()->bits(), files.front()->path(),
           files.front()->bits());
  }
  return files;
}

std::string shard_path(const std::string& stem, std::string_view split, int64_t index) {
  return fmt::format("{}.{}.{:06d}.bin", stem, split, index);
}

std::string vocab_beside(const std::string& token_file) {
  const fs::path p(token_file);
  std::string stem = p.stem().string();
  // A shard index: "corpus.train.000003" -> "corpus.train".
  const auto dot = stem.rfind('.');
  if (dot != std::string::npos && dot + 1 < stem.size() &&
      std::all_of(stem.begin() + static_cast<std::ptrdiff_t>(dot) + 1, stem.end(), [](char c) { return c >= '0' && c <= '9'; }))
    stem.resize(dot);
  for (const char* split : {".train", ".val"})
    if (stem.size() > std::strlen(split) && stem.ends_with(split)) stem.resize(stem.size() - std::strlen(split));
  return (p.parent_path() / (stem + ".vocab.json")).string();
}

}  // namespace zt
