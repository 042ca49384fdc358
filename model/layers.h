// Parameterized layers used inside modules: views into a unit's flat buffer plus the kernel
// calls of their forward and backward, side by side.
#pragma once
#include "core/kernels.h"
#include "model/unit.h"

namespace zt {

// y (N,out) = x (N,in) @ W^T + b. The weight may span several adjacent parameters (fused
// q/k/v or gate/up); the bias likewise. Indices < 0 mean "no bias".
struct Linear {
  Unit* unit = nullptr;
  int w_first = -1, w_last = -1, b_first = -1, b_last = -1;
  int64_t in = 0, out = 0;

  Tensor weight() const { return unit->param_span(w_first, w_last, {out, in}); }
  Tensor dweight() const { return unit->grad_span(w_first, w_last, {out, in}); }
  bool has_bias() const { return b_first >= 0; }

  void forward(Tensor& y, const Tensor& x) const;
  // dx (may be null) += dy @ W (= with GradWrite::overwrite); dW += dy^T x, or = where the
  // unit's gradient for W is stale (Unit::claim_grads); db += colsum(dy).
  void backward(Tensor* dx, const Tensor& dy, const Tensor& x, GradWrite dx_write = GradWrite::accumulate) const;
};

// LayerNorm (with optional bias) or RMSNorm over the last dim.
struct Norm {
  Unit* unit = nullptr;
  int w = -1, b = -1;
  bool rms = false;
  float eps = 1e-5f;

  // mean is unused (may be undefined) for RMSNorm.
  void forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x) const;
  void backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& mean,
                const Tensor& rstd) const;
};

// Causal depthwise Conv1d over the T positions of each sequence (the WorkerTransformer's token
// mixer): weight (C, 1, K) as PyTorch's Conv1d(C, C, K, groups=C); the bias optional. The
// weights are read in f32 like the norms' (a K-tap elementwise op, not a GEMM).
struct CausalConv {
  Unit* unit = nullptr;
  int w = -1, b = -1;

  void forward(Tensor& y, const Tensor& x, int64_t T) const;
  // dx += ...; dW, db += ...
  void backward(Tensor& dx, const Tensor& dy, const Tensor& x, int64_t T) const;
};

}  // namespace zt
