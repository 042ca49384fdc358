// Optimizers update flat fp32 shards: each rank's slice of each unit's parameters, with the
// gradients of the same slice and per-range weight decay (no decay on biases, norms, ...).
#pragma once
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace zt {

struct DecayRange {
  int64_t begin, end;  // elements within the shard
  bool decay;
};

struct ParamShard {
  Tensor params;  // 1-D f32
  Tensor grads;   // 1-D f32, same numel
  std::vector<DecayRange> ranges;  // cover [0, numel) in order
  Tensor compute = {};  // when defined: the bf16/f16 copy of params the step also writes (same numel)
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every shard from grads * grad_scale (the clipping factor, applied as the
  // update reads each gradient); the step count is incremented first (1-based, as in PyTorch).
  virtual void step(std::span<ParamShard> shards, float lr, float grad_scale = 1.0f) = 0;
  // Named state of shard i ({"exp_avg", m}, ...) for checkpoints; allocated on the first step
  // or by init_state.
  virtual std::vector<std::pair<std::string, Tensor>> state(size_t shard) = 0;
  // Names of the state tensors each shard has, in state() order.
  virtual std::vector<std::string> state_names() const = 0;
  // Allocates (zeroed) state for every shard now, e.g. to load a checkpoint into.
  virtual void init_state(std::span<ParamShard> shards) = 0;
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }

 protected:
  int64_t step_ = 0;
};

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};
struct SgdOptions {
  float momentum = 0.f, weight_decay = 0.f;
};

std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& options);
std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options);

}  // namespace zt
