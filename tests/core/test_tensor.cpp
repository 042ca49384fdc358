#include <gtest/gtest.h>

#include <omp.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/fault_injection.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace zt {
namespace {

TEST(Tensor, ViewsShareStorageAndReshape) {
  Tensor t = Tensor::zeros({4, 6}, DType::f32, MemTag::other);
  Tensor row = t.slice(1, 3);
  EXPECT_EQ(row.shape(), (Shape{2, 6}));
  row.data<float>()[0] = 5.f;
  EXPECT_EQ(t.data<float>()[6], 5.f);
  Tensor v = t.view(6, {3, 2});
  EXPECT_EQ(v.data<float>()[0], 5.f);
  EXPECT_EQ(t.reshape({24}).numel(), 24);
  EXPECT_THROW(t.view(20, {5}), Error);
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
}

// The tests run with ZT_TEST_POISON_EMPTY=1 (tests/support/poison_empty.cpp): uninitialized
// memory reads as NaN, also in a block the allocator hands out again after it held zeros.
TEST(Tensor, EmptyTensorsHoldNaNsInTests) {
  ASSERT_TRUE(poison_empty_tensors());
  { Tensor::zeros({1024}, DType::f32); }
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    Tensor t = Tensor::empty({1024}, dtype);
    Tensor wide = Tensor::empty({1024}, DType::f32);
    convert(wide, t);
    for (int64_t i = 0; i < 1024; ++i) ASSERT_TRUE(std::isnan(wide.data<float>()[i])) << dtype_name(dtype) << " " << i;
  }
}

TEST(Tensor, ShapesWithMoreElementsThanInt64AreAnError) {
  EXPECT_EQ(shape_numel({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  EXPECT_THROW(shape_numel({int64_t{1} << 62, 4, 512}), Error);
  EXPECT_THROW(shape_numel({int64_t{1} << 32, int64_t{1} << 32}), Error);
}

TEST(Allocator, CountsLiveAndPeakPerTagAndReusesBlocks) {
  auto& a = CpuAllocator::instance();
  a.reset_peaks();
  MemStats before = a.stats();
  void* p0;
  {
    Tensor g = Tensor::empty({1 << 20}, DType::f32, MemTag::grads);
    p0 = g.raw();
    MemStats during = a.stats();
    EXPECT_EQ(during.live_of(MemTag::grads) - before.live_of(MemTag::grads),
              static_cast<int64_t>(CpuAllocator::rounded_size(4 << 20)));
  }
  MemStats after = a.stats();
  EXPECT_EQ(after.live_of(MemTag::grads), before.live_of(MemTag::grads));
  EXPECT_GE(after.peak_of(MemTag::grads) - before.live_of(MemTag::grads), 4 << 20);
  // The same size comes back from the free list, not from the OS.
  Tensor again = Tensor::empty({1 << 20}, DType::f32, MemTag::activations);
  EXPECT_EQ(again.raw(), p0);
}

TEST(DType, Bf16AndF16RoundTrip) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 512)), 1.0f);  // ties to even
  EXPECT_EQ(f16_to_f32(f32_to_f16(0.333251953125f)), 0.333251953125f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

// bf16 rounding against a reference that picks, in double, the nearer of the two bf16
// neighbours (ties to the even one; past the largest finite value the upper neighbour is
// 2^128, as IEEE rounds with an unbounded exponent). NaN: quiet, sign and top payload kept.
uint16_t reference_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return static_cast<uint16_t>((u >> 16) | 0x40);
  if (std::isinf(x)) return static_cast<uint16_t>(u >> 16);
  const uint32_t down = u & 0xffff0000u, up = down + 0x10000u;  // toward zero, away from zero
  const double lo = std::fabs(static_cast<double>(std::bit_cast<float>(down)));
  const double hi = (up & 0x7fffffffu) == 0x7f800000u ? std::ldexp(1.0, 128)
                                                      : std::fabs(static_cast<double>(std::bit_cast<float>(up)));
  const double a = std::fabs(static_cast<double>(x));
  const bool take_up = a - lo > hi - a || (a - lo == hi - a && ((down >> 16) & 1u));
  return static_cast<uint16_t>((take_up ? up : down) >> 16);
}

TEST(DType, Bf16RoundingMatchesNearestEvenOnEveryKindOfValue) {
  std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x00000001u, 0x00008000u, 0x00018000u, 0x007fffffu,
                                0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x7f7f8000u, 0x7f7f7fffu,
                                0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fbfffffu,
                                0x7fc00000u, 0x7fffffffu, 0xffffffffu, 0xff800001u};
  for (int i = 0; i < 1 << 20; ++i) {  // random patterns, half of them ties or next to one
    uint32_t u = philox4x32(/*seed=*/7, /*stream=*/0, static_cast<uint64_t>(i))[0];
    if (i % 2) u = (u & 0xffff0000u) | (0x7fffu + static_cast<uint32_t>(i % 3));  // 0x7fff, 0x8000, 0x8001
    bits.push_back(u);
  }
  Tensor src = Tensor::empty({static_cast<int64_t>(bits.size())}, DType::f32, MemTag::other);
  std::memcpy(src.raw(), bits.data(), bits.size() * 4);
  Tensor dst = Tensor::empty(src.shape(), DType::bf16, MemTag::other);
  convert(dst, src);  // the vectorized path
  int64_t wrong = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    const float x = std::bit_cast<float>(bits[i]);
    const uint16_t want = reference_bf16(x);
    if (f32_to_bf16(x) != want || dst.data<uint16_t>()[i] != want) {
      if (++wrong <= 5) ADD_FAILURE() << std::hex << "bits 0x" << bits[i] << ": want 0x" << want << ", scalar 0x"
                                      << f32_to_bf16(x) << ", vectorized 0x" << dst.data<uint16_t>()[i];
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(Rng, FillIsIndependentOfThreadCount) {
  Tensor a = Tensor::empty({10001}, DType::f32);
  Tensor b = Tensor::empty({10001}, DType::f32);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  fill_normal(a, 0.f, 1.f, 42, 7);
  omp_set_num_threads(2);
  fill_normal(b, 0.f, 1.f, 42, 7);
  omp_set_num_threads(saved);
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
  double mean = 0, var = 0;
  for (int64_t i = 0; i < a.numel(); ++i) mean += a.data<float>()[i];
  mean /= a.numel();
  for (int64_t i = 0; i < a.numel(); ++i) var += std::pow(a.data<float>()[i] - mean, 2);
  var /= a.numel();
  EXPECT_NEAR(mean, 0.0, 0.05);
  EXPECT_NEAR(var, 1.0, 0.05);
  fill_normal(b, 0.f, 1.f, 43, 7);
  EXPECT_NE(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

}  // namespace
}  // namespace zt
