// Counter-based RNG (Philox4x32-10). Draw i of stream s under seed k is a pure function of
// (k, s, i), so results never depend on thread count or iteration order.
#pragma once
#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace zt {

// Four 32-bit words for counter (stream, index) under `seed`.
std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t stream, uint64_t index);

// Uniform in [0, 1) and standard normal for draw `index` of `stream`.
float uniform01(uint64_t seed, uint64_t stream, uint64_t index);
float standard_normal(uint64_t seed, uint64_t stream, uint64_t index);

// Element i of `t` (f32) gets draw `first_index + i` of `stream`.
void fill_normal(Tensor& t, float mean, float std, uint64_t seed, uint64_t stream,
                 uint64_t first_index = 0);
void fill_uniform(Tensor& t, float lo, float hi, uint64_t seed, uint64_t stream,
                  uint64_t first_index = 0);

// Sequential generator for host-side choices (sampling, shuffles): a seed, a stream and a
// position, so its state is three integers that checkpoint trivially.
class Rng {
 public:
  Rng(uint64_t seed = 0, uint64_t stream = 0, uint64_t position = 0)
      : seed_(seed), stream_(stream), position_(position) {}
  uint32_t next_u32() { return philox4x32(seed_, stream_, position_++)[0]; }
  uint64_t next_u64();
  float next_float() { return uniform01(seed_, stream_, position_++); }
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased
  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t position() const { return position_; }

 private:
  uint64_t seed_, stream_, position_;
};

}  // namespace zt
