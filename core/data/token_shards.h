// Token data in several files (llm.c-style shards): which files a data key names, and opening
// them as one ordered list. A key names a file, a directory (its .bin files whose name holds
// the split, "train" or "val", in sorted order), a glob (its matches, sorted), or a list of
// any of these (in the order given). Samples never span two files: see TokenDataset.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/data/token_file.h"

namespace zt {

// The files `spec` names, in reading order; fails naming `key` for a missing file, an empty
// directory or glob, or a file named twice. `split` is "train" or "val" (for directories).
std::vector<std::string> resolve_token_files(const std::vector<std::string>& spec, std::string_view key,
                                             std::string_view split);

// True when `spec` names more than one plain path: a list, a directory or a glob.
bool names_several_files(const std::vector<std::string>& spec);

// Opens every file (ids checked against vocab_size when > 0); fails naming the file whose
// token width differs from the first file's.
std::vector<std::shared_ptr<const TokenFile>> open_token_files(const std::vector<std::string>& paths,
                                                               int64_t vocab_size, TokenFormat format);

// "DIR/name" + "train" + 3 -> "DIR/name.train.000003.bin", as `zt data prepare --shard-tokens` writes.
std::string shard_path(const std::string& stem, std::string_view split, int64_t index);

// "x/corpus.train.000003.bin" or "x/corpus.train.bin" -> "x/corpus.vocab.json".
std::string vocab_beside(const std::string& token_file);

}  // namespace zt
