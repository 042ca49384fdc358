// A split's tokens written as llm.c-style shards: STEM.SPLIT.000000.bin, .000001.bin, ... of
// at most shard_tokens each (0: one file, STEM.SPLIT.bin). Each shard goes through a temp file
// (TokenFileWriter), so a failure before commit() leaves no shard behind.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/data/token_file.h"

namespace zt {

class ShardWriter {
 public:
  ShardWriter(std::string stem, std::string split, int bits, int64_t shard_tokens);
  void append(std::span<const uint32_t> tokens);
  // Moves the last n tokens, in order, to the end of `to` (the val split cut after
  // streaming); shards left empty are dropped.
  void move_tail(int64_t n, TokenFileWriter& to);
  // Commits every shard; returns their paths in order.
  std::vector<std::string> commit();
  int64_t count() const;

 private:
  void open_next();
  std::string stem_, split_;
  int bits_;
  int64_t shard_tokens_;
  std::vector<std::unique_ptr<TokenFileWriter>> shards_;
};

// Removes STEM.SPLIT.bin and STEM.SPLIT.NNNNNN.bin files other than `keep`: shards of an
// earlier, larger preparation would otherwise be read with the new ones.
void remove_stale_shards(const std::string& stem, const std::string& split, const std::vector<std::string>& keep);

}  // namespace zt
