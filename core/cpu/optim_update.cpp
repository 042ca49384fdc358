#include <cmath>

#include "core/cpu/ops.h"

namespace zt::cpu {

// torch.optim.AdamW: p *= 1 - lr*wd; m, v updated; p -= lr * m_hat / (sqrt(v_hat) + eps).
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale) {
  const float bc1 = 1.f - static_cast<float>(std::pow(static_cast<double>(beta1), static_cast<double>(step)));
  const float bc2 = 1.f - static_cast<float>(std::pow(static_cast<double>(beta2), static_cast<double>(step)));
  const float step_size = lr / bc1;
  const float inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
  const float decay = 1.f - lr * weight_decay;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

// torch.optim.SGD (dampening 0, no Nesterov); buf is null when momentum is 0.
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                float weight_decay, float grad_scale) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] * grad_scale + weight_decay * p[i];
    if (buf) {
      buf[i] = momentum * buf[i] + d;
      d = buf[i];
    }
    p[i] -= lr * d;
  }
}

}  // namespace zt::cpu
