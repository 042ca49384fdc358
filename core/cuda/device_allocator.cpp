// The caching allocator of each CUDA device: cudaMalloc/cudaFree behind the shared caching
// logic of core/allocator.h. Blocks freed by a tensor are reused in stream order: every kernel
// runs on the device's one compute stream, so a block handed out again is only touched by work
// queued after the work that used it before.
#include <array>
#include <memory>
#include <mutex>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/runtime.h"
#include "core/error.h"

namespace zt {

namespace {
class CudaBackend final : public AllocatorBackend {
 public:
  explicit CudaBackend(int device) : device_(device) {}
  void* allocate(size_t bytes) override {
    ZT_CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;  // the caching allocator releases its cache, retries, then reports
    }
    ZT_CUDA_CHECK(err);
    return p;
  }
  void free(void* ptr, size_t) override {
    ZT_CUDA_CHECK(cudaSetDevice(device_));
    ZT_CUDA_CHECK(cudaFree(ptr));
  }
  std::string name() const override { return fmt::format("cuda:{}", device_); }

 private:
  int device_;
};

constexpr int kMaxDevices = 64;
}  // namespace

CachingAllocator& device_allocator(int device) {
  cuda::set_device(Device::cuda(device));  // throws naming the reason when there is none
  static std::array<CachingAllocator*, kMaxDevices> allocators{};
  static std::mutex mu;
  ZT_CHECK(device < kMaxDevices, "device {} past the {} supported", device, kMaxDevices);
  std::lock_guard<std::mutex> lock(mu);
  // Leaked on purpose, like the host allocator: tensors in static objects may outlive main,
  // and cudaFree after the runtime has shut down fails.
  if (!allocators[device]) allocators[device] = new CachingAllocator(std::make_unique<CudaBackend>(device));
  return *allocators[device];
}

MemStats device_memory_stats(int device) { return device_allocator(device).stats(); }

}  // namespace zt
