#include "core/data/shard_writer.h"

#include <algorithm>
#include <filesystem>

#include "core/data/token_shards.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace zt {

ShardWriter::ShardWriter(std::string stem, std::string split, int bits, int64_t shard_tokens)
    : stem_(std::move(stem)), split_(std::move(split)), bits_(bits), shard_tokens_(shard_tokens) {
  ZT_CHECK(shard_tokens >= 0, "shard_tokens {}", shard_tokens);
  open_next();
}

void ShardWriter::open_next() {
  const std::string path = shard_tokens_ == 0 ? stem_ + "." + split_ + ".bin"
                                              : shard_path(stem_, split_, static_cast<int64_t>(shards_.size()));
  shards_.push_back(std::make_unique<TokenFileWriter>(path, bits_));
}

void ShardWriter::append(std::span<const uint32_t> tokens) {
  while (!tokens.empty()) {
    if (shard_tokens_ > 0 && shards_.back()->count() == shard_tokens_) open_next();
    const auto room = shard_tokens_ == 0 ? tokens.size()
                                         : std::min(tokens.size(), static_cast<size_t>(shard_tokens_ - shards_.back()->count()));
    shards_.back()->append(tokens.first(room));
    tokens = tokens.subspan(room);
  }
}

int64_t ShardWriter::count() const {
  int64_t n = 0;
  for (const auto& s : shards_) n += s->count();
  return n;
}

void ShardWriter::move_tail(int64_t n, TokenFileWriter& to) {
  ZT_CHECK(n >= 0 && n <= count(), "tail of {} from {} tokens", n, count());
  // The first shard the tail reaches into, and how much of it the tail takes.
  size_t first = shards_.size();
  int64_t after = 0;  // tail tokens in the shards after `first`
  while (first > 0 && after + shards_[first - 1]->count() <= n) after += shards_[--first]->count();
  if (after < n) shards_[--first]->move_tail(n - after, to);
  for (size_t s = first + (after < n ? 1 : 0); s < shards_.size(); ++s) shards_[s]->move_tail(shards_[s]->count(), to);
  // Shard 0 stays even when empty: a split always has its file.
  while (shards_.size() > 1 && shards_.back()->count() == 0) shards_.pop_back();
}

std::vector<std::string> ShardWriter::commit() {
  std::vector<std::string> paths;
  try {
    for (auto& s : shards_) {
      s->commit();
      paths.push_back(s->path());
    }
  } catch (...) {
    std::error_code ec;
    for (const auto& p : paths) fs::remove(p, ec);  // all shards or none
    throw;
  }
  return paths;
}

void remove_stale_shards(const std::string& stem, const std::string& split, const std::vector<std::string>& keep) {
  const fs::path dir = fs::path(stem).parent_path().empty() ? fs::path(".") : fs::path(stem).parent_path();
  const std::string name = fs::path(stem).filename().string() + "." + split + ".";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with(name) || !file.ends_with(".bin")) continue;
    const std::string middle = file.substr(name.size(), file.size() - name.size() - 4);
    const bool ours = file == name + "bin" ||
                      (middle.size() == 6 && std::all_of(middle.begin(), middle.end(), [](char c) { return c >= '0' && c <= '9'; }));
    const bool kept = std::any_of(keep.begin(), keep.end(), [&](const std::string& k) { return fs::equivalent(k, entry.path(), ec); });
    if (ours && !kept) fs::remove(entry.path(), ec);
  }
}

}  // namespace zt
