#include <omp.h>

#include <algorithm>

#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/math/optim.h"

namespace zt::cpu {
namespace {

// update(i) for every i in [0, n) on all threads, and the compute copy of p written in the
// same pass: bf16 while p[i] is in registers; f16 by a stage of values at a time, rounded
// (to_f16_one_thread: F16C, which GCC does not emit in a loop for a CPU with AVX512-FP16)
// while the stage is in L1. A pass over p of its own would read it from memory again.
template <class Update>
void update_writing_copy(const float* p, int64_t n, ComputeOut out, Update&& update) {
  if (out.bf16) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      update(i);
      store(out.bf16 + i, p[i]);
    }
    return;
  }
  if (!out.f16) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) update(i);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t end = n * (t + 1) / T;
    constexpr int64_t kStage = 1024;
    for (int64_t i0 = n * t / T; i0 < end; i0 += kStage) {
      const int64_t len = std::min(kStage, end - i0);
#pragma omp simd
      for (int64_t i = i0; i < i0 + len; ++i) update(i);
      to_f16_one_thread(out.f16 + i0, p + i0, len);
    }
  }
}

}  // namespace

// torch.optim.AdamW; the per-element math is core/math/optim.h (shared with CUDA).
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale, ComputeOut out) {
  const auto f = math::AdamWFactors::make(lr, beta1, beta2, eps, weight_decay, step, grad_scale);
  update_writing_copy(p, n, out, [&](int64_t i) { math::adamw_element(p[i], g[i], m[i], v[i], f); });
}

// torch.optim.SGD (dampening 0, no Nesterov); buf is null when momentum is 0.
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                float weight_decay, float grad_scale, ComputeOut out) {
  update_writing_copy(p, n, out, [&](int64_t i) {
    math::sgd_element(p[i], g[i], buf ? buf + i : nullptr, lr, momentum, weight_decay, grad_scale);
  });
}

}  // namespace zt::cpu
