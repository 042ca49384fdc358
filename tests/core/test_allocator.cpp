// The caching allocator's logic with a fake backend (runs everywhere): reuse, per-tag live and
// peak bytes, release-and-retry on out-of-memory, and the out-of-memory message. Also what a
// device tensor does on a machine (or a build) without CUDA.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "core/allocator.h"
#include "core/kernels.h"
#include "core/tensor.h"
#include "tests/support/errors.h"

#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::error_of;

// Hands out addresses (never dereferenced) from a capacity; counts calls.
struct FakeCounters {
  int64_t capacity = 0, in_use = 0;
  int allocs = 0, frees = 0;
};
class FakeBackend final : public AllocatorBackend {
 public:
  explicit FakeBackend(FakeCounters* c) : c_(c) {}
  void* allocate(size_t bytes) override {
    if (c_->in_use + static_cast<int64_t>(bytes) > c_->capacity) return nullptr;
    c_->in_use += static_cast<int64_t>(bytes);
    ++c_->allocs;
    next_ += bytes + 64;
    return reinterpret_cast<void*>(next_);
  }
  void free(void*, size_t bytes) override {
    c_->in_use -= static_cast<int64_t>(bytes);
    ++c_->frees;
  }
  std::string name() const override { return "fake:0"; }

 private:
  FakeCounters* c_;
  uintptr_t next_ = 1 << 20;
};

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameRoundedSize) {
  FakeCounters c{.capacity = 1 << 20};
  CachingAllocator a(std::make_unique<FakeBackend>(&c));
  void* p = a.allocate(1000, MemTag::activations);
  a.deallocate(p, 1000, MemTag::activations);
  EXPECT_EQ(a.stats().cached, 1024);
  EXPECT_EQ(a.allocate(990, MemTag::grads), p);  // 990 and 1000 both round to 1024
  EXPECT_EQ(c.allocs, 1);
  EXPECT_EQ(a.stats().cached, 0);
  void* q = a.allocate(5000, MemTag::grads);
  EXPECT_NE(q, p);
  EXPECT_EQ(c.allocs, 2);
}

TEST(CachingAllocator, CountsLiveAndPeakBytesPerTag) {
  FakeCounters c{.capacity = 1 << 20};
  CachingAllocator a(std::make_unique<FakeBackend>(&c));
  void* p = a.allocate(4096, MemTag::params);
  void* g = a.allocate(64, MemTag::grads);
  void* g2 = a.allocate(64, MemTag::grads);
  a.deallocate(g, 64, MemTag::grads);
  MemStats s = a.stats();
  EXPECT_EQ(s.live_of(MemTag::params), 4096);
  EXPECT_EQ(s.live_of(MemTag::grads), 64);
  EXPECT_EQ(s.peak_of(MemTag::grads), 128);
  EXPECT_EQ(s.live_total, 4096 + 64);
  EXPECT_EQ(s.peak_total, 4096 + 128);
  a.reset_peaks();
  EXPECT_EQ(a.stats().peak_of(MemTag::grads), 64);
  a.deallocate(g2, 64, MemTag::grads);
  a.deallocate(p, 4096, MemTag::params);
  EXPECT_EQ(a.stats().live_total, 0);
  a.release_cached();
  EXPECT_EQ(a.stats().cached, 0);
  EXPECT_EQ(c.in_use, 0);
  EXPECT_EQ(c.frees, c.allocs);
}

TEST(CachingAllocator, ReleasesTheCacheAndRetriesOnceWhenTheBackendIsFull) {
  FakeCounters c{.capacity = 16384};
  CachingAllocator a(std::make_unique<FakeBackend>(&c));
  void* p = a.allocate(8192, MemTag::activations);
  a.deallocate(p, 8192, MemTag::activations);  // cached, still held from the backend
  void* q = a.allocate(12288, MemTag::activations);  // fits only once the cached 8 KiB go back
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(c.frees, 1);
  EXPECT_EQ(a.stats().cached, 0);
  EXPECT_EQ(a.stats().live_of(MemTag::activations), 12288);
}

TEST(CachingAllocator, OutOfMemoryNamesTheRequestAndTheLiveBytesPerTag) {
  FakeCounters c{.capacity = 16384};
  CachingAllocator a(std::make_unique<FakeBackend>(&c));
  a.allocate(8192, MemTag::params);
  a.allocate(4096, MemTag::optimizer);
  const std::string msg = error_of([&] { a.allocate(8192, MemTag::activations); });
  EXPECT_THAT(msg, HasSubstr("out of memory on fake:0"));
  EXPECT_THAT(msg, HasSubstr("8192 bytes requested"));
  EXPECT_THAT(msg, HasSubstr("for activations"));
  EXPECT_THAT(msg, HasSubstr("params 8192"));
  EXPECT_THAT(msg, HasSubstr("optimizer 4096"));
  EXPECT_THAT(msg, HasSubstr("12288 live in all"));
  EXPECT_EQ(a.stats().live_total, 12288);  // the failed request left the accounting as it was
}

// Without a GPU (or without a CUDA build) a device tensor is a clear error, not a crash.
TEST(DeviceTensor, WithoutADeviceIsAnErrorThatSaysWhy) {
#ifdef ZT_WITH_CUDA
  if (cuda::device_count() > 0) GTEST_SKIP() << "this machine has a CUDA device";
  EXPECT_THAT(error_of([] { Tensor::empty({4}, DType::f32, MemTag::other, Device::cuda(0)); }),
              HasSubstr("cuda:0 is not a CUDA device of this machine (0 found"));
#else
  EXPECT_THAT(error_of([] { Tensor::empty({4}, DType::f32, MemTag::other, Device::cuda(0)); }),
              HasSubstr("built without CUDA"));
  // A kernel reached with a device tensor names itself.
  float buf[4] = {};
  Tensor t = Tensor::wrap(buf, {4}, DType::f32, Device::cuda(0));
  EXPECT_THAT(error_of([&] { fill(t, 1.f); }), HasSubstr("fill: a tensor on cuda:0, but zerotrain was built without CUDA"));
  Tensor host = Tensor::zeros({4}, DType::f32);
  EXPECT_THAT(error_of([&] { host.copy_from(t); }), HasSubstr("built without CUDA"));
#endif
}

}  // namespace
}  // namespace zt
