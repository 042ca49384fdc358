// Expected per-rank allocator bytes of a training run, by tag, before anything runs: the
// model state a ZeRO stage keeps (with the transient gathers and reductions stages 2 and 3
// hold during a step), the activations one micro-batch keeps for backward (fewer with
// activation checkpointing), and the workspace, each buffer rounded as the caching allocator
// rounds it. `zt plan` prints it for every stage, precision and checkpointing choice.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/config.h"
#include "model/spec.h"

namespace zt {

struct PlanInput {
  ModelSpec spec;
  int world = 1;
  int stage = 0;
  int64_t micro_batch = 1, seq_len = 1;
  Precision compute = Precision::fp32;
  Precision reduce = Precision::fp32;  // gradients on the wire: fp32 or bf16
  double bucket_mb = 25;               // stage 0 all-reduce buckets
  std::vector<bool> checkpointed;      // per layer
  int optimizer_states = 2;        // AdamW: exp_avg, exp_avg_sq; SGD with momentum: 1
  bool cuda = false;               // on a GPU: the device kernels' workspace instead of the CPU's
};

struct PlanBytes {
  std::array<int64_t, kNumMemTags> by_tag{};
  int64_t total() const;
};

PlanBytes plan_memory(const PlanInput& in);

// What `zt train` of `config` allocates per rank at `world` ranks (the config's stage,
// precision and activation checkpointing); model.vocab_size must be resolved.
PlanInput plan_input(const Config& config, int world);

// Fails before anything is built or written when the plan of `in` does not fit in
// `available` bytes (this rank's share of the node's memory, or its GPU's free memory, as
// `where` says), naming the sizes and keys that decide it. Checks a floating-point estimate
// first, so absurd sizes never overflow.
void check_plan_fits(const PlanInput& in, double available, const std::string& where = "to each rank on this node");

// MemAvailable of /proc/meminfo, in bytes; 0 where unknown.
double available_memory_bytes();
// The largest micro-batch (up to `limit`) whose plan fits `budget` bytes; 0 if none.
int64_t largest_micro_batch(PlanInput in, int64_t budget, int64_t limit = 1 << 16);

}  // namespace zt
