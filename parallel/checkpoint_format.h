// The on-disk checkpoint format. A checkpoint is a directory
//
//   step-00000020/
//     meta.json                   what is where, training state, checksums (its own last)
//     shard-00000-of-00004.bin    rank 0's flat slices, raw little-endian fp32
//     ...
//
// Every unit's flat buffer is padded to a multiple of the saving world size W and cut into
// W equal slices; shard file r holds slice r of every unit for each saved tensor ("params",
// the fp32 master weights, then the optimizer's state such as "exp_avg", "exp_avg_sq"),
// padding left out. meta.json lists, per file, the segments (unit, tensor, flat begin,
// count, byte offset), so a reader at any world size reads just the byte ranges it owns.
// The format does not depend on the ZeRO stage that wrote it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tensor.h"

namespace zt {

class Transformer;

// A checkpoint that failed verification (missing, truncated or altered files). Distinct from
// other errors so that on_corrupt: previous can fall back on exactly this.
class CheckpointCorrupt : public Error {
 public:
  using Error::Error;
};

struct CkptSegment {
  int unit = 0;
  std::string tensor;
  int64_t begin = 0, count = 0;  // elements of the unit's flat buffer
  int64_t offset = 0;            // bytes into the file
};

struct CkptFile {
  std::string name;
  int64_t bytes = 0;
  uint32_t crc32c = 0;
  std::vector<CkptSegment> segments;
};

struct CkptParam {
  std::string name;
  Shape shape;
  int64_t offset = 0;  // elements into the unit's flat buffer
};

struct CkptUnit {
  std::string name;
  int64_t numel = 0;
  std::vector<CkptParam> params;
};

struct CheckpointMeta {
  int64_t step = 0;
  int world_size = 1;
  int zero_stage = 0;
  int64_t consumed_samples = 0;
  int64_t global_batch = 0;
  std::vector<std::string> tensors;  // "params", then the optimizer's state names
  std::vector<CkptUnit> units;
  std::vector<CkptFile> files;       // one per saving rank, in rank order
  nlohmann::json state;              // optimizer, sampler, schedule, rng, loss scaler
  std::string config_yaml;           // the resolved config of the saving run
  int64_t total_bytes() const;
};

inline constexpr const char* kMetaFile = "meta.json";
inline constexpr const char* kLatestFile = "latest";

std::string checkpoint_name(int64_t step);            // "step-00000020"
std::string shard_file_name(int rank, int world);     // "shard-00001-of-00004.bin"
// The segments shard `rank` of `world` holds, in file order.
std::vector<CkptSegment> shard_layout(const std::vector<CkptUnit>& units, const std::vector<std::string>& tensors,
                                      int rank, int world);
std::vector<CkptUnit> describe_units(const Transformer& model);

// meta.json ends with "meta_crc32c", the checksum of every byte before it; written
// atomically (temp file, fsync, rename).
void write_meta(const std::filesystem::path& dir, const CheckpointMeta& meta);
// Reads and checks meta.json (checksum, structure, every file's segments covering every
// unit); throws CheckpointCorrupt naming the file and the problem.
CheckpointMeta read_meta(const std::filesystem::path& dir);
// Size and checksum of one shard file; empty when intact, else the problem, naming the file.
std::string verify_shard(const std::filesystem::path& dir, const CkptFile& file);
// Refuses a checkpoint of another model, naming the first mismatching tensor.
void check_same_model(const CheckpointMeta& meta, const std::vector<CkptUnit>& model,
                      const std::filesystem::path& dir);

// Reads flat ranges of a checkpoint, whichever shard files hold them.
class CheckpointReader {
 public:
  CheckpointReader(std::filesystem::path dir, const CheckpointMeta& meta);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;
  // dst[0, count) = elements [begin, begin + count) of `tensor` of unit `unit`; elements
  // past the unit's numel (padding) are zero.
  void read(int unit, const std::string& tensor, int64_t begin, int64_t count, float* dst);
  int64_t bytes_read() const { return bytes_read_; }

 private:
  std::filesystem::path dir_;
  const CheckpointMeta& meta_;
  std::vector<int> fds_;
  int64_t bytes_read_ = 0;
};

// Checkpoints under a root directory.
struct CheckpointEntry {
  int64_t step;
  std::filesystem::path dir;
};
// Directories named step-N that hold a meta.json, newest first (not verified). Temporary
// (*.tmp) and set-aside directories are not listed.
std::vector<CheckpointEntry> list_checkpoints(const std::filesystem::path& root);
// The directory `latest` names, if the file exists. A `latest` that is not a file naming a
// step-N directory beside it that holds a meta.json throws CheckpointCorrupt naming it.
std::optional<std::filesystem::path> read_latest(const std::filesystem::path& root);
void write_latest(const std::filesystem::path& root, const std::string& name);
// What a path given by the user means: a checkpoint (has meta.json), or a checkpoints root
// or run directory whose `latest` (or checkpoints/latest) names one.
std::filesystem::path resolve_checkpoint_path(const std::filesystem::path& path);

}  // namespace zt
