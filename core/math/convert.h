// bf16 <-> f32 conversions shared by host and device: bf16 is the top half of an f32, and the
// narrowing rounds to nearest even (NaN stays NaN), so both backends store identical bits.
#pragma once
#include "core/math/hd.h"

namespace zt::math {

ZT_DECLARE_SIMD
ZT_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

ZT_DECLARE_SIMD
ZT_HD float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

}  // namespace zt::math
