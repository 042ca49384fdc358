// Markers for per-element math shared by the CPU kernels and the CUDA kernels: under nvcc a
// function is compiled for host and device; under plain g++ it is an ordinary inline function
// that OpenMP may vectorize (declare simd).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ZT_HD __host__ __device__ __forceinline__
#define ZT_DECLARE_SIMD
#else
#define ZT_HD inline
#define ZT_DECLARE_SIMD _Pragma("omp declare simd")
#endif

namespace zt::math {

// Bit casts usable in device code (std::bit_cast is not a __device__ function).
ZT_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
ZT_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

}  // namespace zt::math
