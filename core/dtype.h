// Element types and the scalar conversions between them (bf16 and f16 are stored as uint16).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <cmath>

#include "core/math/convert.h"

namespace zt {

enum class DType : uint8_t { f32, bf16, f16, i32, f64 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i32: return 4;
    case DType::f64: return 8;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::f64: return "f64";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name);

// Round-to-nearest-even f32 -> bf16; NaN stays NaN (core/math/convert.h, shared with CUDA).
using math::f32_to_bf16;
using math::bf16_to_f32;

// IEEE half conversions (round-to-nearest-even), via the compiler's _Float16. Clang 14 (the
// fuzz builds) has _Float16 on x86 only with AVX512-FP16; its storage-only __fp16 converts
// the same way but cannot be bit_cast.
#if defined(__clang__) && __clang_major__ < 15
inline uint16_t f32_to_f16(float f) {
  const __fp16 h = static_cast<__fp16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
inline float f16_to_f32(uint16_t u) {
  __fp16 h;
  std::memcpy(&h, &u, 2);
  return static_cast<float>(h);
}
#else
inline uint16_t f32_to_f16(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }
inline float f16_to_f32(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }
#endif

}  // namespace zt
