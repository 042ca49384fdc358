#include "model/layers.h"

namespace zt {

void Linear::forward(Tensor& y, const Tensor& x) const {
  Tensor w = unit->compute_span(w_first, w_last, {out, in});
  if (has_bias()) {
    Tensor b = unit->param_span(b_first, b_last, {out});
    linear_forward(y, x, w, &b);
  } else {
    linear_forward(y, x, w, nullptr);
  }
}

void Linear::backward(Tensor* dx, const Tensor& dy, const Tensor& x, GradWrite dx_write) const {
  Tensor w = unit->compute_span(w_first, w_last, {out, in});
  const GradWrite dw_write = unit->claim_grads(w_first, w_last);
  Tensor dw = dweight();
  if (has_bias()) {
    Tensor db = unit->grad_to_add(b_first, b_last, {out});
    linear_backward(dx, dw, &db, dy, x, w, dx_write, dw_write);
  } else {
    linear_backward(dx, dw, nullptr, dy, x, w, dx_write, dw_write);
  }
}

void Norm::forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x) const {
  Tensor weight = unit->param(w);
  if (rms) {
    rmsnorm_forward(y, rstd, x, weight, eps);
  } else if (b >= 0) {
    Tensor bias = unit->param(b);
    layernorm_forward(y, mean, rstd, x, weight, &bias, eps);
  } else {
    layernorm_forward(y, mean, rstd, x, weight, nullptr, eps);
  }
}

void Norm::backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& mean,
                    const Tensor& rstd) const {
  Tensor weight = unit->param(w);
  Tensor dweight = unit->grad_to_add(w);
  if (rms) {
    rmsnorm_backward(dx, dweight, dy, x, weight, rstd);
  } else if (b >= 0) {
    Tensor dbias = unit->grad_to_add(b);
    layernorm_backward(dx, dweight, &dbias, dy, x, weight, mean, rstd);
  } else {
    layernorm_backward(dx, dweight, nullptr, dy, x, weight, mean, rstd);
  }
}

void CausalConv::forward(Tensor& y, const Tensor& x, int64_t T) const {
  Tensor weight = unit->param(w);
  if (b >= 0) {
    Tensor bias = unit->param(b);
    causal_conv1d_forward(y, x, weight, &bias, T);
  } else {
    causal_conv1d_forward(y, x, weight, nullptr, T);
  }
}

void CausalConv::backward(Tensor& dx, const Tensor& dy, const Tensor& x, int64_t T) const {
  Tensor weight = unit->param(w);
  Tensor dweight = unit->grad_to_add(w);
  if (b >= 0) {
    Tensor dbias = unit->grad_to_add(b);
    causal_conv1d_backward(dx, dweight, &dbias, dy, x, weight, T);
  } else {
    causal_conv1d_backward(dx, dweight, nullptr, dy, x, weight, T);
  }
}

}  // namespace zt
