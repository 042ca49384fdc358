// The CUDA runtime, the device allocator and device tensors (copies in every direction).
#include <gmock/gmock.h>

#include "core/allocator.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/support/errors.h"

namespace zt::testing {
namespace {

using ::testing::HasSubstr;

TEST(CudaTensor, CopiesRoundTripThroughTheDevice) {
  ZT_REQUIRE_CUDA();
  const Tensor host = random_cpu({37, 11}, 1);
  Tensor dev = to_gpu(host);
  EXPECT_EQ(dev.device(), Device::cuda(0));
  Tensor dev2 = dev.clone(MemTag::activations);  // device to device
  EXPECT_EQ(dev2.device(), Device::cuda(0));
  const Tensor back = to_cpu(dev2);
  EXPECT_EQ(std::memcmp(back.raw(), host.raw(), host.nbytes()), 0);
  // Views of device tensors copy their window only.
  Tensor row = Tensor::empty({11}, DType::f32);
  row.copy_from(dev.slice(3, 4).reshape({11}));
  EXPECT_EQ(std::memcmp(row.raw(), host.slice(3, 4).raw(), row.nbytes()), 0);
  dev.zero_();
  const Tensor zeros = to_cpu(dev);
  for (int64_t i = 0; i < zeros.numel(); ++i) ASSERT_EQ(zeros.data<float>()[i], 0.f);
}

TEST(CudaAllocator, CountsDeviceBytesPerTagApartFromTheHost) {
  ZT_REQUIRE_CUDA();
  const MemStats host_before = memory_stats();
  const MemStats before = device_memory_stats(0);
  void* p;
  {
    Tensor g = Tensor::empty({1 << 20}, DType::f32, MemTag::grads, Device::cuda(0));
    p = g.raw();
    EXPECT_EQ(device_memory_stats(0).live_of(MemTag::grads) - before.live_of(MemTag::grads),
              static_cast<int64_t>(CachingAllocator::rounded_size(4 << 20)));
    EXPECT_EQ(memory_stats().live_of(MemTag::grads), host_before.live_of(MemTag::grads));
  }
  EXPECT_EQ(device_memory_stats(0).live_of(MemTag::grads), before.live_of(MemTag::grads));
  Tensor again = Tensor::empty({1 << 20}, DType::f32, MemTag::activations, Device::cuda(0));
  EXPECT_EQ(again.raw(), p);  // from the cache, no cudaMalloc
}

TEST(CudaAllocator, OutOfMemoryNamesTheLiveBytesPerTag) {
  ZT_REQUIRE_CUDA();
  Tensor params = Tensor::empty({1 << 20}, DType::f32, MemTag::params, Device::cuda(0));
  const std::string msg =
      error_of([] { Tensor::empty({int64_t{1} << 50}, DType::f32, MemTag::activations, Device::cuda(0)); });
  EXPECT_THAT(msg, HasSubstr("out of memory on cuda:0"));
  EXPECT_THAT(msg, HasSubstr("params "));
  EXPECT_THAT(msg, HasSubstr("for activations"));
  // The device is still usable afterwards.
  Tensor ok = Tensor::zeros({16}, DType::f32, MemTag::other, Device::cuda(0));
  EXPECT_EQ(to_cpu(ok).data<float>()[15], 0.f);
}

TEST(CudaRuntime, AnAbsentDeviceIsAnErrorNamingIt) {
  ZT_REQUIRE_CUDA();
  const std::string msg = error_of([] { Tensor::empty({4}, DType::f32, MemTag::other, Device::cuda(999)); });
  EXPECT_THAT(msg, HasSubstr("cuda:999 is not a CUDA device"));
}

}  // namespace
}  // namespace zt::testing
