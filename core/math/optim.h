// The per-element AdamW and SGD updates shared by the CPU and CUDA optimizer kernels. The
// scalar factors (bias corrections, decay) are computed once per step on the host.
#pragma once
#include <cmath>

#include "core/math/hd.h"

namespace zt::math {

// torch.optim.AdamW: p *= 1 - lr*wd; m, v updated; p -= lr * m_hat / (sqrt(v_hat) + eps).
struct AdamWFactors {
  float beta1, beta2, eps, grad_scale;
  float step_size;     // lr / (1 - beta1^step)
  float inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^step)
  float decay;         // 1 - lr * weight_decay

  static AdamWFactors make(float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step,
                           float grad_scale) {
    const float bc1 = 1.f - static_cast<float>(std::pow(static_cast<double>(beta1), static_cast<double>(step)));
    const float bc2 = 1.f - static_cast<float>(std::pow(static_cast<double>(beta2), static_cast<double>(step)));
    return {beta1, beta2, eps, grad_scale, lr / bc1, 1.f / std::sqrt(bc2), 1.f - lr * weight_decay};
  }
};

ZT_HD void adamw_element(float& p, float g, float& m, float& v, const AdamWFactors& f) {
  const float gi = g * f.grad_scale;
  const float mi = f.beta1 * m + (1.f - f.beta1) * gi;
  const float vi = f.beta2 * v + (1.f - f.beta2) * gi * gi;
  m = mi;
  v = vi;
  p = p * f.decay - f.step_size * mi / (sqrtf(vi) * f.inv_sqrt_bc2 + f.eps);
}

// torch.optim.SGD (dampening 0, no Nesterov); has_buf is false when momentum is 0.
ZT_HD void sgd_element(float& p, float g, float* buf, float lr, float momentum, float weight_decay,
                       float grad_scale) {
  float d = g * grad_scale + weight_decay * p;
  if (buf) {
    *buf = momentum * *buf + d;
    d = *buf;
  }
  p -= lr * d;
}

}  // namespace zt::math
