#include "core/rng.h"

#include <cmath>

namespace zt {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t stream, uint64_t index) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(index), c1 = static_cast<uint32_t>(index >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

static inline float to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

float uniform01(uint64_t seed, uint64_t stream, uint64_t index) {
  return to_unit(philox4x32(seed, stream, index)[0]);
}

float standard_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  auto r = philox4x32(seed, stream, index);
  // Box-Muller on two 24-bit uniforms in float; u1 in (0, 1] keeps log finite.
  const float u1 = (static_cast<float>(r[0] >> 8) + 1.f) * (1.f / 16777216.f);
  const float u2 = static_cast<float>(r[1] >> 8) * (1.f / 16777216.f);
  return std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853071795865f * u2);
}

void fill_normal(Tensor& t, float mean, float std, uint64_t seed, uint64_t stream,
                 uint64_t first_index) {
  float* p = t.data<float>();
  int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    p[i] = mean + std * standard_normal(seed, stream, first_index + static_cast<uint64_t>(i));
}

void fill_uniform(Tensor& t, float lo, float hi, uint64_t seed, uint64_t stream,
                  uint64_t first_index) {
  float* p = t.data<float>();
  int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    p[i] = lo + (hi - lo) * uniform01(seed, stream, first_index + static_cast<uint64_t>(i));
}

uint64_t Rng::next_u64() {
  auto r = philox4x32(seed_, stream_, position_++);
  return (static_cast<uint64_t>(r[1]) << 32) | r[0];
}

uint64_t Rng::below(uint64_t n) {
  if (n <= 1) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the biased tail
  uint64_t x;
  do x = next_u64(); while (x >= limit);
  return x % n;
}

}  // namespace zt
