// A decoder-only Transformer of the gpt2 or llama family, built as a chain of modules over
// units: [embed] [block.0] ... [block.L-1] [final], with the LM head in the embed unit when
// tied and in the final unit otherwise.
#pragma once
#include <memory>
#include <vector>

#include "model/block.h"
#include "model/embedding.h"
#include "model/spec.h"

namespace zt {

// Called around every module so an engine can gather, free and reduce per unit. The embed
// unit of a tied model is used twice; post_backward says when a unit's last use is done, and
// post_forward when this micro-batch's backward starts next (after the chain's last module
// of a forward with Stream::need_backward), with that module's unit.
class UnitHooks {
 public:
  virtual ~UnitHooks() = default;
  virtual void pre_forward(Unit&) {}
  virtual void post_forward(Unit&, bool backward_next) {}
  virtual void pre_backward(Unit&) {}
  virtual void post_backward(Unit&, bool last_use) {}
};

class Transformer {
 public:
  explicit Transformer(const ModelSpec& spec);
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelSpec& spec() const { return spec_; }
  std::vector<Unit*> units();
  std::vector<const Unit*> units() const;
  // The unit of each module in forward order (the embed unit twice when the head is tied).
  std::vector<Unit*> forward_order();
  // Per module in forward order: whether its backward reads its unit's parameters.
  std::vector<bool> backward_reads_params() const;
  int64_t num_params() const;

  // Fills bound parameters: GPT-2 init (normal(0, std), residual projections std/sqrt(2L),
  // norms 1, biases 0). Each parameter's draws are seeded by its name, so the values do not
  // depend on layout or sharding.
  void init_parameters();
  void init_unit(Unit& unit);

  // Runs the chain. With targets, s.loss_sum gets the summed per-token loss; with
  // s.need_backward the head also leaves dlogits ready for backward().
  void forward(Stream& s, UnitHooks* hooks = nullptr);
  // An empty cache for decoding with forward(): Stream::cache, Stream::pos.
  KVCache make_kv_cache() const;

  // Accumulates parameter gradients (+=) of the last forward.
  void backward(Stream& s, UnitHooks* hooks = nullptr);

  // Activation checkpointing: block l keeps only its input between forward and backward
  // when layers[l], recomputing its forward right before its backward. Gradients are
  // bitwise those without it.
  void set_checkpointed_blocks(const std::vector<bool>& layers);
  int64_t num_checkpointed_blocks() const;

  // MoE blocks' routed slots per expert since the caller last reset them, in layer order.
  std::vector<MoeLoad*> moe_loads();

  // Mixed precision: saved activations off the residual stream are stored in `dtype` (see
  // Module::set_activation_dtype); f32 keeps every activation in f32.
  void set_activation_dtype(DType dtype);

  // Where activations, scratch and the RoPE table live: the device of the parameters the
  // engine binds. forward() copies a micro-batch's tokens and targets there when they are
  // elsewhere (the trainer copies them itself, in one transfer).
  void set_device(Device device);
  Device device() const { return device_; }

 private:
  ModelSpec spec_;
  std::vector<std::unique_ptr<Unit>> units_;
  std::vector<std::unique_ptr<Module>> chain_;
  std::vector<bool> last_use_in_backward_;  // per chain position
  Tensor rope_table_;
  Device device_ = Device::cpu();
  BlockScratch scratch_;
  BlockActivations shared_activations_;  // of every checkpointed block
};

// Sets up a model with plain (unsharded) fp32 buffers for one process: tests and tools.
struct LocalModel {
  explicit LocalModel(const ModelSpec& spec);
  void zero_grads();
  Transformer model;
  std::vector<Tensor> params, grads;  // per unit, flat
};

}  // namespace zt
