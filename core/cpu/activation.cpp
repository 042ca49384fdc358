#include <cmath>

#include "core/cpu/ops.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    out[i] = 0.5f * x * (1.f + fast_tanh(u));
  }
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float t = fast_tanh(u);
    const float du = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * x * x);
    const float grad = 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du;
    dinp[i] += grad * dout[i];
  }
}

void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* gate = inp + r * 2 * F;
    const float* up = gate + F;
    float* y = out + r * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) y[i] = gate[i] * fast_sigmoid(gate[i]) * up[i];
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
      const float g = gate[i], s = fast_sigmoid(g);
      dup[i] += dy[i] * g * s;
      dgate[i] += dy[i] * up[i] * s * (1.f + g * (1.f - s));
    }
  }
}

}  // namespace zt::cpu
