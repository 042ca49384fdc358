// The training loop of `zt train`: data, model, engine, schedule, evaluation, progress,
// metrics and the final weights in the run directory.
#pragma once
#include <memory>
#include <string>

#include "core/config.h"
#include "core/runtime.h"
#include "parallel/comm.h"

namespace zt {

struct TrainSummary {
  std::string run_dir;
  int64_t steps = 0;
  double final_loss = 0;     // train loss of the last step
  double val_loss = -1;      // last evaluation, -1 when none ran
  double wall_s = 0;
  double tokens_per_s = 0;   // over the whole run
  bool preempted = false;    // stopped on a signal after saving a checkpoint
};

TrainSummary run_training(const Config& config);

// The communicator of this process's place in the job (`where`), by parallel.backend, for a
// run whose tensors live on `compute` (nccl needs a CUDA device; auto picks by it).
std::unique_ptr<Communicator> make_communicator(CommBackend backend, const RankInfo& where, double timeout_s,
                                               Device compute = Device::cpu());

}  // namespace zt
