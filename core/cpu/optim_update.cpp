#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/math/optim.h"

namespace zt::cpu {

// torch.optim.AdamW; the per-element math is core/math/optim.h (shared with CUDA).
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale, Bf16* compute_out) {
  const auto f = math::AdamWFactors::make(lr, beta1, beta2, eps, weight_decay, step, grad_scale);
  if (compute_out) {  // the compute copy written while p is in registers: no pass of its own
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      math::adamw_element(p[i], g[i], m[i], v[i], f);
      store(compute_out + i, p[i]);
    }
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) math::adamw_element(p[i], g[i], m[i], v[i], f);
}

// torch.optim.SGD (dampening 0, no Nesterov); buf is null when momentum is 0.
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                float weight_decay, float grad_scale, Bf16* compute_out) {
  if (compute_out) {  // as in adamw_update
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      math::sgd_element(p[i], g[i], buf ? buf + i : nullptr, lr, momentum, weight_decay, grad_scale);
      store(compute_out + i, p[i]);
    }
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    math::sgd_element(p[i], g[i], buf ? buf + i : nullptr, lr, momentum, weight_decay, grad_scale);
}

}  // namespace zt::cpu
