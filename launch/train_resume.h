// What resuming from a checkpoint means for the training loop: which global batch the run
// keeps, whether the data stream can continue exactly, and the state the loop saves besides
// the model (sampler, schedule, RNG).
#pragma once
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "optim/schedule.h"
#include "parallel/checkpoint.h"
#include "parallel/sampler.h"

namespace zt {

// The checkpoint root of a run: checkpoint.dir, or RUN_DIR/checkpoints.
std::filesystem::path checkpoint_root(const Config& cfg);

// Samples per step. A resumed run keeps the checkpoint's global batch (grad_accum follows
// the new world size); an error when train.global_batch names another one or when it does
// not split into micro-batches over this many ranks.
int64_t resolve_global_batch(const Config& cfg, int world, const std::optional<ResumePoint>& resume);

// The loop's own state, stored in the checkpoint as is.
nlohmann::json loop_state(const Config& cfg, const DistributedSampler& sampler, int64_t num_samples,
                          const LrSchedule& schedule, int64_t step);
// Refuses to resume when the sample stream would not continue exactly (another dataset
// size, seed or shuffle), naming the key.
void check_stream_continues(const Config& cfg, const ResumePoint& resume, int64_t num_samples);

// Drops metrics.jsonl records past `step` (logged after the checkpoint a resumed run starts
// from), so the file reads as one run.
void trim_metrics(const std::filesystem::path& path, int64_t step);

}  // namespace zt
