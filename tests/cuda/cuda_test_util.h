// Shared by the GPU tests (suites named Cuda*, label `cuda`): skip with the runtime's reason on a
// machine without a device, move tensors between host and device, compare a device result with
// the CPU kernel's.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/kernels.h"
#include "core/rng.h"
#include "core/tensor.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt::testing {

// The GPUs the tests see (0 without CUDA).
inline int visible_gpus() {
#ifdef ZT_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

// Empty when a CUDA device can run the tests, else why not.
inline std::string cuda_unavailable() {
#ifdef ZT_WITH_CUDA
  return visible_gpus() > 0 ? std::string() : cuda::unavailable_reason();
#else
  return "zerotrain was built without CUDA (ZT_CUDA=OFF or no nvcc)";
#endif
}

#define ZT_REQUIRE_CUDA()                                                     \
  do {                                                                        \
    const std::string zt_why_ = ::zt::testing::cuda_unavailable();            \
    if (!zt_why_.empty()) GTEST_SKIP() << "no CUDA device: " << zt_why_;      \
  } while (0)

// cuda::host_waits() where it exists (the tests that read it require a device first).
inline int64_t host_waits() {
#ifdef ZT_WITH_CUDA
  return cuda::host_waits();
#else
  return 0;
#endif
}

inline Tensor to_gpu(const Tensor& t) { return t.to(Device::cuda(0), MemTag::other); }
inline Tensor to_cpu(const Tensor& t) { return t.to(Device::cpu(), MemTag::other); }

// N(0, std) f32 on the CPU, reproducible from `stream`; dtype other than f32: rounded to it.
inline Tensor random_cpu(const Shape& shape, uint64_t stream, float std = 1.f, DType dtype = DType::f32) {
  Tensor t = Tensor::empty(shape, DType::f32);
  fill_normal(t, 0.f, std, 4321, stream);
  if (dtype == DType::f32) return t;
  Tensor r = Tensor::empty(shape, dtype);
  convert(r, t);
  return r;
}

inline Tensor as_f32_cpu(const Tensor& t) {
  Tensor host = t.device().is_cpu() ? t : to_cpu(t);
  if (host.dtype() == DType::f32) return host;
  Tensor f = Tensor::empty(host.shape(), DType::f32);
  convert(f, host);
  return f;
}

// |got - want| <= rtol * (|want| + max|want|) for every element: relative to the element and
// to the tensor's scale (sums in another order differ by rounding, near zero too).
inline void expect_close(const Tensor& want, const Tensor& got, double rtol, const std::string& what) {
  const Tensor w = as_f32_cpu(want), g = as_f32_cpu(got);
  ASSERT_EQ(w.numel(), g.numel()) << what;
  double scale = 0;
  for (int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(w.data<float>()[i])));
  int misses = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = w.data<float>()[i], b = g.data<float>()[i];
    if (!(std::fabs(a - b) <= rtol * (std::fabs(a) + scale)) && ++misses <= 5)
      ADD_FAILURE() << what << "[" << i << "]: gpu " << b << ", cpu " << a;
  }
  EXPECT_EQ(misses, 0) << what << ": " << misses << " of " << w.numel() << " elements differ";
}

inline constexpr double kF32Tol = 1e-5;
inline constexpr double kBf16Tol = 1.0 / 128;  // one bf16 ulp (8 bits of mantissa) and a rounding apart

}  // namespace zt::testing
