#include "optim/optimizer.h"

#include "core/kernels.h"

namespace zt {

namespace {

// State tensors per shard, allocated once (MemTag::optimizer, zeroed) on the device of the
// shard's parameters and kept for the run.
class ShardState {
 public:
  explicit ShardState(int tensors_per_shard) : per_shard_(tensors_per_shard) {}
  Tensor& get(size_t shard, int which, const Tensor& params) {
    if (state_.size() <= shard) state_.resize(shard + 1);
    auto& s = state_[shard];
    if (s.empty())
      for (int i = 0; i < per_shard_; ++i)
        s.push_back(Tensor::zeros({params.numel()}, DType::f32, MemTag::optimizer, params.device()));
    return s[which];
  }
  bool has(size_t shard) const { return shard < state_.size() && !state_[shard].empty(); }
  const std::vector<Tensor>& of(size_t shard) const { return state_[shard]; }

 private:
  int per_shard_;
  std::vector<std::vector<Tensor>> state_;
};

class AdamW : public Optimizer {
 public:
  explicit AdamW(const AdamWOptions& o) : o_(o), state_(2) {}
  void step(std::span<ParamShard> shards, float lr, float grad_scale) override {
    ++step_;
    for (size_t i = 0; i < shards.size(); ++i) {
      ParamShard& s = shards[i];
      Tensor& m = state_.get(i, 0, s.params);
      Tensor& v = state_.get(i, 1, s.params);
      for (const DecayRange& r : s.ranges) {
        const Shape shape{r.end - r.begin};
        Tensor p = s.params.view(r.begin, shape), g = s.grads.view(r.begin, shape);
        Tensor mr = m.view(r.begin, shape), vr = v.view(r.begin, shape);
        Tensor c = s.compute.defined() ? s.compute.view(r.begin, shape) : Tensor();
        adamw_update(p, g, mr, vr, {lr, o_.beta1, o_.beta2, o_.eps, r.decay ? o_.weight_decay : 0.f, step_, grad_scale},
                     c.defined() ? &c : nullptr);
      }
    }
  }
  std::vector<std::pair<std::string, Tensor>> state(size_t shard) override {
    if (!state_.has(shard)) return {};
    return {{"exp_avg", state_.of(shard)[0]}, {"exp_avg_sq", state_.of(shard)[1]}};
  }
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  void init_state(std::span<ParamShard> shards) override {
    for (size_t i = 0; i < shards.size(); ++i) state_.get(i, 0, shards[i].params);
  }

 private:
  AdamWOptions o_;
  ShardState state_;
};

class Sgd : public Optimizer {
 public:
  explicit Sgd(const SgdOptions& o) : o_(o), state_(1) {}
  void step(std::span<ParamShard> shards, float lr, float grad_scale) override {
    ++step_;
    for (size_t i = 0; i < shards.size(); ++i) {
      ParamShard& s = shards[i];
      Tensor* buf = o_.momentum > 0 ? &state_.get(i, 0, s.params) : nullptr;
      for (const DecayRange& r : s.ranges) {
        const Shape shape{r.end - r.begin};
        Tensor p = s.params.view(r.begin, shape), g = s.grads.view(r.begin, shape);
        Tensor b = buf ? buf->view(r.begin, shape) : Tensor();
        Tensor c = s.compute.defined() ? s.compute.view(r.begin, shape) : Tensor();
        sgd_update(p, g, buf ? &b : nullptr, {lr, o_.momentum, r.decay ? o_.weight_decay : 0.f, grad_scale},
                   c.defined() ? &c : nullptr);
      }
    }
  }
  std::vector<std::pair<std::string, Tensor>> state(size_t shard) override {
    if (!state_.has(shard)) return {};
    return {{"momentum_buffer", state_.of(shard)[0]}};
  }
  std::vector<std::string> state_names() const override {
    return o_.momentum > 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  }
  void init_state(std::span<ParamShard> shards) override {
    if (o_.momentum > 0)
      for (size_t i = 0; i < shards.size(); ++i) state_.get(i, 0, shards[i].params);
  }

 private:
  SgdOptions o_;
  ShardState state_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& o) { return std::make_unique<AdamW>(o); }
std::unique_ptr<Optimizer> make_sgd(const SgdOptions& o) { return std::make_unique<Sgd>(o); }

}  // namespace zt
