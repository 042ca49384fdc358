// A unit is the sharding granule (FSDP-style): a group of parameters that live in one flat
// buffer. Parameters are views at fixed offsets; sharding is arithmetic on those ranges.
#pragma once
#include <string>
#include <vector>

#include "core/kernels.h"
#include "core/tensor.h"

namespace zt {

// What a parameter is, for weight-decay exclusion and initialization.
enum class ParamKind : uint8_t { matrix, bias, norm, embedding };
enum class ParamInit : uint8_t { normal, residual, zeros, ones };  // residual: std / sqrt(2 L)

struct ParamSpec {
  std::string name;   // Hugging Face name of the family
  Shape shape;        // our layout: linear weights [out, in]
  ParamKind kind;
  ParamInit init;
  int64_t offset;     // elements from the start of the unit's flat buffer
  int64_t numel() const { return shape_numel(shape); }
};

class Unit {
 public:
  explicit Unit(std::string name) : name_(std::move(name)) {}
  Unit(const Unit&) = delete;
  Unit& operator=(const Unit&) = delete;

  const std::string& name() const { return name_; }
  // Appends a parameter to the layout; consecutive parameters are adjacent in memory, so
  // q/k/v (or gate/up) declared in a row form one fused matrix.
  int add_param(std::string name, Shape shape, ParamKind kind, ParamInit init);
  const std::vector<ParamSpec>& params() const { return params_; }
  int64_t numel() const { return numel_; }  // unpadded

  // The engine owns the flat buffers and binds them (full buffers in compute layout); at
  // ZeRO stage 3 they are bound only while the unit runs. Binding an undefined tensor
  // releases the buffer.
  void bind(Tensor flat_params, Tensor flat_grads);
  void bind_params(Tensor flat_params);
  void bind_grads(Tensor flat_grads);
  bool bound() const { return params_flat_.defined(); }
  const Tensor& flat_params() const { return params_flat_; }
  const Tensor& flat_grads() const { return grads_flat_; }

  Tensor param(int i) const { return view_of(params_flat_, i, i, params_[i].shape); }
  Tensor grad(int i) const { return view_of(grads_flat_, i, i, params_[i].shape); }
  // Params first..last (inclusive, adjacent) seen as one tensor of `shape`.
  Tensor param_span(int first, int last, const Shape& shape) const {
    return view_of(params_flat_, first, last, shape);
  }
  Tensor grad_span(int first, int last, const Shape& shape) const {
    return view_of(grads_flat_, first, last, shape);
  }

  // Gradients that hold an earlier step's values where a step would start from zeros: the
  // engine marks them so instead of zeroing them (a pass over all of them, and the weight
  // GEMMs then read the zeros back; for gpt2-124m 500 MB each way). Backward's first write of
  // each then overwrites it (claim_grads) or zeroes it first (grad_to_add), and whatever no
  // backward wrote is zeroed by zero_stale_grads. Binding a gradient buffer clears the marks.
  void mark_grads_stale();
  // How a kernel that can overwrite params first..last's gradient writes it: overwrite when
  // all of them are stale, else accumulate (stale ones zeroed first). Either way none is
  // stale afterwards: call it right before the kernel writes.
  GradWrite claim_grads(int first, int last);
  // Params first..last's gradient as one tensor of `shape` to add into, stale ones zeroed.
  Tensor grad_to_add(int first, int last, const Shape& shape);
  Tensor grad_to_add(int i) { return grad_to_add(i, i, params_[i].shape); }
  void zero_stale_grads();

  // Mixed precision: a copy of the full params in the compute dtype (bf16 or f16), which the
  // engine keeps in step with the fp32 ones. Matmul weights are read from it when bound.
  void bind_compute(Tensor flat_compute) { compute_flat_ = std::move(flat_compute); }
  Tensor compute_span(int first, int last, const Shape& shape) const {
    return view_of(compute_flat_.defined() ? compute_flat_ : params_flat_, first, last, shape);
  }

 private:
  Tensor view_of(const Tensor& flat, int first, int last, const Shape& shape) const;
  void zero_stale(int first, int last);  // params first..last: those stale zeroed, none stale after
  void zero_grad(int i);

  std::string name_;
  std::vector<ParamSpec> params_;
  int64_t numel_ = 0;
  Tensor params_flat_, grads_flat_, compute_flat_;
  std::vector<bool> stale_;  // per param; empty when none is stale
};

}  // namespace zt
