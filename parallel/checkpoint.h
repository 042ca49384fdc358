// The checkpoint manager: every rank writes its own shard file in parallel, rank 0 writes
// meta.json, and a checkpoint becomes visible only when complete. Directory protocol:
//
//   1. rank 0 creates ROOT/step-N.tmp (removing partial ones a crash left behind)
//   2. every rank writes and fsyncs its shard file into it (synchronously, or from a host
//      snapshot on a background thread with async)
//   3. rank 0 writes meta.json with every file's size and crc32c, fsyncs, renames the
//      directory to ROOT/step-N, points ROOT/latest at it (atomic rename), prunes old ones
//   4. barrier: no rank goes on before `latest` names the new checkpoint
//
// Loading verifies every file's checksum first (ranks share the reading) and only then
// changes state; each rank reads only the flat ranges it owns at its world size and stage.
#pragma once
#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "parallel/checkpoint_format.h"
#include "parallel/engine.h"

namespace zt {

struct CheckpointOptions {
  std::filesystem::path root;  // holds step-N/ directories and `latest`
  int64_t keep_last = 2;
  bool async = false;
};

// What a checkpoint holds besides the engine's shards.
struct TrainingState {
  int64_t step = 0;
  int64_t consumed_samples = 0;
  int64_t global_batch = 0;
  nlohmann::json extra = nlohmann::json::object();  // sampler, schedule, rng, ...: stored as given
  std::string config_yaml;
};

struct SaveStats {
  int64_t step = 0;
  std::filesystem::path dir;
  int64_t bytes = 0;     // this rank's shard file
  double stall_s = 0;    // training time spent in save() (the snapshot only, when async)
  double write_s = 0;    // writing and fsyncing this rank's file
};

struct LoadStats {
  int64_t bytes = 0;     // read by this rank
  double verify_s = 0, read_s = 0;
};

// A checkpoint chosen for resuming, already verified.
struct ResumePoint {
  std::filesystem::path dir;
  CheckpointMeta meta;
  double verify_s = 0;
};

// Collective. The checkpoint `resume` (auto | none | a directory) selects under `root`,
// verified by all ranks together. auto takes `latest`; a corrupt one is an error naming the
// file, or with on_corrupt: previous the newest intact older one (logged with the reason).
// nullopt: start from scratch. Never deletes anything.
std::optional<ResumePoint> find_resume_point(Communicator& comm, const std::filesystem::path& root,
                                             const std::string& resume, OnCorrupt on_corrupt);

// Every file of one checkpoint, verified by this process alone: the problems found (empty
// when intact). For `zt ckpt verify` and tests.
std::vector<std::string> verify_checkpoint(const std::filesystem::path& dir);

class CheckpointManager {
 public:
  CheckpointManager(Engine& engine, CheckpointOptions options);
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  // Collective. Saves the engine's state labelled with `state`; synchronous saves are
  // published before returning, async ones by a later finish().
  SaveStats save(const TrainingState& state);
  // An async checkpoint written or being written but not yet published (same on all ranks).
  bool has_pending() const { return pending_.has_value(); }
  // This rank's background write is done (so finish() would not wait for it).
  bool pending_written() const { return write_done_.load(); }
  // Collective. Waits for the background writes and publishes the pending checkpoint.
  std::optional<SaveStats> finish();

  // Collective. Loads a verified checkpoint into the engine, resharding to this world size
  // and stage; refuses another model or optimizer.
  TrainingState load(const ResumePoint& point, LoadStats* stats = nullptr);

 private:
  struct Pending {
    TrainingState state;
    int64_t step_count = 0;  // the optimizer's, when the state was captured (not when published)
    std::filesystem::path tmp;
    SaveStats stats;
  };
  struct Written {
    int64_t bytes = -1;
    uint32_t crc = 0;
    double seconds = 0;
    std::string error;
  };
  std::filesystem::path begin_save(int64_t step);
  Written write_shard(const std::filesystem::path& path, const std::vector<const float*>& sources, int64_t step);
  void publish(const Pending& p, const Written& mine);

  Engine& engine_;
  Communicator& comm_;
  CheckpointOptions options_;
  std::vector<CkptUnit> units_;
  std::vector<std::string> tensors_;
  std::vector<CkptSegment> layout_;  // this rank's shard file
  Tensor staging_;                   // async: host snapshot, kept across saves
  std::thread prefault_;             // async: touches staging_'s pages once, off the step
  std::optional<Pending> pending_;
  std::thread writer_;
  std::atomic<bool> write_done_{false};
  Written written_;
};

}  // namespace zt
