// The engine owns each unit's flat buffers, drives the optimizer on flat fp32 shards and
// (through the UnitHooks it implements) decides when parameters are gathered and gradients
// reduced. This process-local engine is ZeRO at world size 1: one shard holds everything.
#pragma once
#include <memory>
#include <vector>

#include "model/transformer.h"
#include "optim/optimizer.h"

namespace zt {

struct DecayPolicy {
  bool biases = false, norms = false, embeddings = false;  // matrices always decay
  bool decays(ParamKind kind) const;
};

struct EngineOptions {
  DecayPolicy decay;
  double grad_clip = 1.0;  // max global grad norm; 0 = off
};

struct StepStats {
  double grad_norm = 0;   // global norm before clipping
  float clip_scale = 1;   // factor applied to the gradients
};

class Engine : public UnitHooks {
 public:
  Engine(Transformer& model, std::unique_ptr<Optimizer> optimizer, const EngineOptions& options);

  Transformer& model() { return model_; }
  Optimizer& optimizer() { return *optimizer_; }
  void zero_grads();
  // Norm, clip and optimizer update after all micro-batches of a step.
  StepStats step(float lr);

 private:
  Transformer& model_;
  std::unique_ptr<Optimizer> optimizer_;
  EngineOptions options_;
  std::vector<ParamShard> shards_;  // one per unit
};

}  // namespace zt
