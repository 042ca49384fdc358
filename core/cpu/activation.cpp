#include "core/cpu/ops.h"
#include "core/math/activation.h"

// The per-element math is core/math/activation.h, shared with the CUDA kernels.
namespace zt::cpu {

void gelu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    out[i] = math::gelu(inp[i]);
  }
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    dinp[i] += math::gelu_grad(inp[i]) * dout[i];
  }
}

void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* gate = inp + r * 2 * F;
    const float* up = gate + F;
    float* y = out + r * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) y[i] = math::swiglu(gate[i], up[i]);
  }
}

void swiglu_backward(float* dinp, const float* dout, const float* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* gate = inp + r * 2 * F;
    const float* up = gate + F;
    const float* dy = dout + r * F;
    float* dgate = dinp + r * 2 * F;
    float* dup = dgate + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      float dg, du;
      math::swiglu_grad(gate[i], up[i], dy[i], dg, du);
      dup[i] += du;
      dgate[i] += dg;
    }
  }
}

}  // namespace zt::cpu
