// Everything `zt train` checks before its first write to disk, in one place so that a real
// start and `zt train --dry-run` run the same checks: the data, the checkpoint to resume,
// the run directory, the batch arithmetic, the memory plan and the init_from weights.
// runtime.device is checked first: a run that cannot use its device touches nothing else.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>

#include "core/config.h"
#include "core/device.h"
#include "launch/memory_plan.h"
#include "launch/train_data.h"
#include "parallel/checkpoint.h"
#include "parallel/comm.h"

namespace zt {

struct TrainPreflight {
  Config cfg;  // model.vocab_size, train.global_batch and train.grad_accum resolved
  Device device;  // where this rank trains (runtime.device)
  DataPlan data;
  std::optional<ResumePoint> resume;
  std::filesystem::path run_dir, ckpt_root;
  PlanInput memory;              // the plan the memory check passed
  double available_per_rank = 0;  // bytes of this node's memory for each rank; 0 where unknown
};

// Collective over `comm`. The run has `world` ranks, `local_world` of them on this node, this
// one `local_rank` among them (a dry run passes a single-process comm, the world it plans for
// and local rank 0). Writes nothing.
TrainPreflight preflight_training(const Config& cfg, Communicator& comm, int world, int local_rank, int local_world);

// What `zt train --dry-run` prints: the model, the batch arithmetic, where the run starts and
// the memory each rank needs.
std::string describe_preflight(const TrainPreflight& preflight, int world);

// Collective: runs `checks` on every rank and agrees on the outcome, so that an error every
// rank raises is printed once. When a rank failed, each distinct error is printed (as main
// prints one) by the lowest rank that raised it, and every rank then raises ReportedError. On
// a single rank the error propagates unchanged.
void check_together(Communicator& comm, const std::function<void()>& checks);

}  // namespace zt
