#include "core/cpu/rope.h"

#include <cmath>

namespace zt::cpu {

void rope_table(float* table, int64_t T, int64_t D, double theta) {
  const int64_t half = D / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
      double angle = static_cast<double>(t) * inv_freq;
      table[t * D + i] = static_cast<float>(std::cos(angle));
      table[t * D + half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void rope_apply(float* x, const float* table, int64_t B, int64_t T, int64_t width,
                int64_t n_heads, int64_t D, bool inverse) {
  const int64_t half = D / 2;
  // Forward: [x1, x2] -> [x1 c - x2 s, x2 c + x1 s]; inverse (transpose): s -> -s.
  const float sign = inverse ? -1.f : 1.f;
#pragma omp parallel for schedule(static) if (B * T * n_heads * D >= (int64_t{1} << 16))
  for (int64_t row = 0; row < B * T; ++row) {
    const float* cs = table + (row % T) * D;
    const float* sn = cs + half;
    float* xr = x + row * width;
    for (int64_t hd = 0; hd < n_heads; ++hd) {
      float* x1 = xr + hd * D;
      float* x2 = x1 + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float c = cs[i], s = sign * sn[i];
        const float a = x1[i], b = x2[i];
        x1[i] = a * c - b * s;
        x2[i] = b * c + a * s;
      }
    }
  }
}

}  // namespace zt::cpu
