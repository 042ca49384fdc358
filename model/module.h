// Module: one step of the model's forward/backward chain, acting on the residual stream of a
// micro-batch. Forward and backward are explicit; a module saves what its backward needs.
#pragma once
#include "core/tensor.h"
#include "model/unit.h"

namespace zt {

struct KVCache;

// The state passed along the chain for one micro-batch.
struct Stream {
  int64_t B = 0, T = 0;
  Tensor tokens;           // (B,T) i32
  Tensor targets;          // (B,T) i32; undefined when only logits are wanted
  bool need_backward = false;
  float grad_scale = 1.f;  // d(objective) / d(per-token loss), e.g. 1 / tokens per step
  Tensor x;                // (B*T, C) activations leaving the last module run
  Tensor dx;               // (B*T, C) gradient w.r.t. x, flowing backward
  Tensor logits;           // (B*T, V) after the head (dlogits in place when training)
  double loss_sum = 0;     // sum of per-token losses of this micro-batch
  // When defined, (1) f64 on the model's device: the head adds the micro-batch's loss sum
  // here instead, without waiting for the device (a training step reads it back once), and
  // leaves loss_sum 0.
  Tensor loss_total;
  // Incremental decoding (B = 1): a forward at pos 0 fills the cache from T tokens (the
  // prompt); each later forward appends one token at position pos. Null when training.
  KVCache* cache = nullptr;
  int64_t pos = 0;
  // MoE: aux_loss_coef * sum over sequences of (their load-balancing loss * T), summed over
  // MoE blocks; over the step's tokens it is the objective's aux term (not in loss_sum).
  double aux_loss_sum = 0;
  int64_t rows() const { return B * T; }
};

class Module {
 public:
  explicit Module(Unit& unit) : unit_(&unit) {}
  virtual ~Module() = default;
  virtual void forward(Stream& s) = 0;
  virtual void backward(Stream& s) = 0;
  Unit& unit() const { return *unit_; }
  // Whether backward reads the unit's parameters: at ZeRO stage 3 the engine gathers them
  // for a module's backward only when it does.
  virtual bool backward_reads_params() const { return true; }
  // For traces: the unit's name, except where two modules share a unit (the tied head).
  virtual const char* name() const { return unit_->name().c_str(); }
  // Mixed precision: the dtype of the activations a module saves for backward, except the
  // residual stream (x, x2, block outputs) and the norms' statistics, which stay f32 as under
  // autocast. Kernels compute in f32 and round what they store. f32 (the default) or the
  // compute dtype.
  void set_activation_dtype(DType dtype) { act_dtype_ = dtype; }
  // Where the module's activations and scratch live: its unit's device.
  void set_device(Device device) { device_ = device; }

 protected:
  // (Re)allocates an activation buffer on the module's device when the micro-batch shape
  // changes; otherwise the same memory is reused every step.
  void ensure(Tensor& t, const Shape& shape, MemTag tag = MemTag::activations, DType dtype = DType::f32) const {
    if (!t.defined() || t.shape() != shape || t.dtype() != dtype || t.device() != device_)
      t = Tensor::empty(shape, dtype, tag, device_);
  }
  Unit* unit_;
  DType act_dtype_ = DType::f32;
  Device device_ = Device::cpu();
};

}  // namespace zt
