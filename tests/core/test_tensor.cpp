#include <gtest/gtest.h>

#include <omp.h>

#include "core/allocator.h"
#include "core/dtype.h"
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
