// Maps the config schema onto the components it configures (the one place where config
// enums become component enums).
#pragma once
#include <memory>

#include "core/config.h"
#include "model/spec.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "parallel/engine.h"

namespace zt {

// model.vocab_size must be resolved (> 0) by now.
ModelSpec model_spec(const Config& config);
std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& optim);
EngineOptions engine_options(const OptimConfig& optim);
// Everything the config sets: the optimizer's part, ZeRO stage, buckets, dtypes; on `device`.
EngineOptions engine_options(const Config& config, Device device);
LrSchedule lr_schedule(const OptimConfig& optim, int64_t total_steps);
// Which blocks memory.activation_checkpointing checkpoints, per layer.
std::vector<bool> checkpointed_layers(const MemoryConfig& memory, int64_t n_layer);
DType dtype_of(Precision p);
// precision.loss_scale: dynamic scaling for fp16 compute, a fixed scale if a number, else none.
LossScaler make_loss_scaler(const PrecisionConfig& precision);

}  // namespace zt
