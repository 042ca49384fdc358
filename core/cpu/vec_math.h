// Vectorizable transcendental functions for OpenMP simd loops. glibc only exposes its vector
// math under -ffast-math, which we do not want globally (overflow checks need real NaNs),
// so exp is a Cephes-style polynomial: ~2 ulp on [-87, 88], clamped outside.
#pragma once
#include <bit>
#include <cstdint>

namespace zt::cpu {

#pragma omp declare simd
inline float fast_exp(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
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
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

#pragma omp declare simd
inline float fast_tanh(float x) {
  // tanh(x) = 1 - 2 / (exp(2x) + 1); exact limits at +-1 through the clamp in fast_exp.
  return 1.f - 2.f / (fast_exp(2.f * x) + 1.f);
}

#pragma omp declare simd
inline float fast_sigmoid(float x) { return 1.f / (1.f + fast_exp(-x)); }

}  // namespace zt::cpu
