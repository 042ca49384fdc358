// bf16 storage as the CPU kernels read and write it directly (no widened copy): a type of its
// own, since f16 is uint16_t too. Loads widen exactly; stores round to nearest even as
// convert() does, so a kernel on Bf16 gives bitwise what it gives on converted copies.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace zt::cpu {

struct Bf16 {
  uint16_t bits;
};
static_assert(sizeof(Bf16) == 2);

inline float to_f32(float x) { return x; }
inline float to_f32(Bf16 x) { return bf16_to_f32(x.bits); }
inline void store(float* dst, float x) { *dst = x; }
inline void store(Bf16* dst, float x) { dst->bits = f32_to_bf16(x); }

}  // namespace zt::cpu
