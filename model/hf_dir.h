// Hugging Face model directories: config.json beside model.safetensors, or beside shards
// model-0000K-of-0000N.safetensors listed in model.safetensors.index.json
// ({"metadata": {"total_size": BYTES}, "weight_map": {tensor: shard file}}).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "model/transformer.h"

namespace zt {

// The tensors of one .safetensors file, or of a model directory's file or shards, by name.
class HfWeightFiles {
 public:
  // A directory is read as transformers does: model.safetensors if present, else the index.
  // A shard the index names that is missing, a tensor not in the shard the index says, or
  // a shard tensor the index leaves out is an error naming it.
  static HfWeightFiles open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const { return names_; }  // file order, shard by shard
  bool contains(const std::string& name) const { return shard_of_.count(name) > 0; }
  const SafetensorsFile& file_of(const std::string& name) const;
  DType dtype(const std::string& name) const { return file_of(name).dtype(name); }
  const Shape& shape(const std::string& name) const { return file_of(name).shape(name); }
  Tensor get(const std::string& name) const { return file_of(name).get(name); }

 private:
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> shard_of_;
  std::vector<std::string> names_;
};

// A shard size as transformers reads max_shard_size: bytes, or an integer with KB, MB, GB
// (powers of 10) or KiB, MiB, GiB (powers of 2); case-insensitive. "5GB" = 5e9 bytes.
int64_t parse_shard_size(const std::string& text);

// Tensors of `bytes`, in order, cut into shards of at most `max_bytes` each (a larger tensor
// gets a shard of its own): transformers' rule. The tensor indices of each shard.
std::vector<std::vector<size_t>> plan_shards(const std::vector<int64_t>& bytes, int64_t max_bytes);

// Writes the directory `dir`: config.json (the given text), the weights with Hugging Face
// names (model.safetensors, or shards plus the index over max_shard_bytes), `copies`
// (source file, name in the directory) and `texts` (name in the directory, content). Written into a temporary directory beside it and
// renamed into place: on error nothing is left. `dir` must not exist, or be empty; missing
// parent directories are created.
void write_hf_directory(const Transformer& model, const std::string& dir, const std::string& config_json,
                        const std::vector<std::pair<std::string, std::string>>& copies, int64_t max_shard_bytes,
                        const std::vector<std::pair<std::string, std::string>>& texts = {});

}  // namespace zt
