#include "parallel/engine.h"

#include <cmath>

#include "core/kernels.h"
#include "optim/clip.h"

namespace zt {

bool DecayPolicy::decays(ParamKind kind) const {
  switch (kind) {
    case ParamKind::matrix: return true;
    case ParamKind::bias: return biases;
    case ParamKind::norm: return norms;
    case ParamKind::embedding: return embeddings;
  }
  return true;
}

Engine::Engine(Transformer& model, std::unique_ptr<Optimizer> optimizer, const EngineOptions& options)
    : model_(model), optimizer_(std::move(optimizer)), options_(options) {
  for (Unit* u : model_.units()) {
    Tensor params = Tensor::zeros({u->numel()}, DType::f32, MemTag::params);
    Tensor grads = Tensor::zeros({u->numel()}, DType::f32, MemTag::grads);
    u->bind(params, grads);
    ParamShard shard{params, grads, {}};
    for (const ParamSpec& p : u->params())
      shard.ranges.push_back({p.offset, p.offset + p.numel(), options_.decay.decays(p.kind)});
    shards_.push_back(std::move(shard));
  }
}

void Engine::zero_grads() {
  for (ParamShard& s : shards_) s.grads.zero_();
}

StepStats Engine::step(float lr) {
  std::vector<Tensor> grads;
  for (ParamShard& s : shards_) grads.push_back(s.grads);
  StepStats stats;
  stats.grad_norm = std::sqrt(sum_of_squares(grads));
  stats.clip_scale = clip_scale(stats.grad_norm, options_.grad_clip);
  if (stats.clip_scale != 1.f)
    for (Tensor& g : grads) scale_inplace(g, stats.clip_scale);
  optimizer_->step(shards_, lr);
  return stats;
}

}  // namespace zt
