// Per-element activation math shared by the CPU and CUDA kernels (core/cpu/activation.cpp,
// token_mix.cpp, core/cuda/activation.cu), so the CPU tests cover what the GPU computes.
// exp is a Cephes-style polynomial: ~2 ulp on [-87, 88], clamped outside. glibc only exposes
// its vector math under -ffast-math, which we do not want globally, and the same polynomial on
// the GPU keeps both backends' results within an ulp of each other.
#pragma once
#include "core/math/hd.h"

namespace zt::math {

ZT_DECLARE_SIMD
ZT_HD float fast_exp(float x) {
  // Two selects, each the max/min instruction's own NaN rule (a NaN x passes through): one
  // nested select made GCC run the polynomial unclamped and blend in constants afterwards.
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorizes; roundf is a call).
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  float r = x - n * 0.693359375f;  // ln 2 split in two for exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  // A NaN input stays NaN through p; converting a NaN n to int would be undefined.
  const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.f) + 127) << 23;
  return p * bits_float(static_cast<uint32_t>(bits));
}

// tanh(x) = 1 - 2 / (exp(2x) + 1); exact limits at +-1 through the clamp in fast_exp.
ZT_DECLARE_SIMD
ZT_HD float fast_tanh(float x) { return 1.f - 2.f / (fast_exp(2.f * x) + 1.f); }

ZT_DECLARE_SIMD
ZT_HD float fast_sigmoid(float x) { return 1.f / (1.f + fast_exp(-x)); }

inline constexpr float kSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCubic = 0.044715f;

// GELU, tanh approximation (GPT-2).
ZT_DECLARE_SIMD
ZT_HD float gelu(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return 0.5f * x * (1.f + fast_tanh(u));
}

// d gelu(x) / dx.
ZT_DECLARE_SIMD
ZT_HD float gelu_grad(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  const float t = fast_tanh(u);
  const float du = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * x * x);
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du;
}

// SwiGLU on one (gate, up) pair: silu(gate) * up.
ZT_DECLARE_SIMD
ZT_HD float swiglu(float gate, float up) { return gate * fast_sigmoid(gate) * up; }

// Gradients of swiglu for the upstream gradient dy.
ZT_HD void swiglu_grad(float gate, float up, float dy, float& dgate, float& dup) {
  const float s = fast_sigmoid(gate);
  dup = dy * gate * s;
  dgate = dy * up * s * (1.f + gate * (1.f - s));
}

}  // namespace zt::math
