#include "core/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace zt {

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kHugeAlign = size_t{2} << 20;
constexpr size_t kHugeThreshold = size_t{4} << 20;

class HostBackend final : public AllocatorBackend {
 public:
  void* allocate(size_t bytes) override {
    const bool huge = bytes >= kHugeThreshold;
    void* p = nullptr;
    // posix_memalign: aligned_alloc requires the size to be a multiple of the alignment,
    // which a 2 MiB alignment would not be for most sizes.
    if (posix_memalign(&p, huge ? kHugeAlign : kAlign, bytes) != 0) return nullptr;
    // Transparent huge pages cut first-touch cost of large buffers ~500x fewer faults.
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
  }
  void free(void* ptr, size_t) override { std::free(ptr); }
  std::string name() const override { return "cpu"; }
};
}  // namespace

std::string_view mem_tag_name(MemTag tag) {
  switch (tag) {
    case MemTag::params: return "params";
    case MemTag::grads: return "grads";
    case MemTag::optimizer: return "optimizer";
    case MemTag::activations: return "activations";
    case MemTag::comm: return "comm";
    case MemTag::workspace: return "workspace";
    case MemTag::other: return "other";
  }
  return "?";
}

CachingAllocator& CpuAllocator::instance() {
  // Leaked on purpose: tensors in static objects may be freed after main returns.
  static CachingAllocator* a = new CachingAllocator(std::make_unique<HostBackend>());
  return *a;
}

CachingAllocator::CachingAllocator(std::unique_ptr<AllocatorBackend> backend) : backend_(std::move(backend)) {}

CachingAllocator::~CachingAllocator() { release_cached(); }

// A training loop that asks for the same shapes every step always hits a free list.
size_t CachingAllocator::rounded_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= 4096) return (bytes + kAlign - 1) / kAlign * kAlign;
  size_t top = std::bit_floor(bytes);
  size_t step = std::max<size_t>(top / 8, 4096);
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes, MemTag tag) {
  size_t size = rounded_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  auto it = free_lists_.find(size);
  if (it != free_lists_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached -= static_cast<int64_t>(size);
  } else {
    p = backend_->allocate(size);
    if (!p && stats_.cached > 0) {
      // Blocks of other sizes may be what the backend is missing: give them back, try again.
      release_cached_locked();
      p = backend_->allocate(size);
    }
    if (!p) {
      std::string live;
      for (int t = 0; t < kNumMemTags; ++t)
        live += fmt::format("{}{} {}", t ? ", " : "", mem_tag_name(static_cast<MemTag>(t)), stats_.live[t]);
      fail("out of memory on {}: {} bytes requested ({} rounded) for {}; live bytes by tag: {}; {} live in all",
           backend_->name(), bytes, size, mem_tag_name(tag), live, stats_.live_total);
    }
  }
  int t = static_cast<int>(tag);
  stats_.live[t] += static_cast<int64_t>(size);
  stats_.peak[t] = std::max(stats_.peak[t], stats_.live[t]);
  stats_.live_total += static_cast<int64_t>(size);
  stats_.peak_total = std::max(stats_.peak_total, stats_.live_total);
  return p;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes, MemTag tag) {
  if (!ptr) return;
  size_t size = rounded_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  int t = static_cast<int>(tag);
  stats_.live[t] -= static_cast<int64_t>(size);
  stats_.live_total -= static_cast<int64_t>(size);
  stats_.cached += static_cast<int64_t>(size);
  free_lists_[size].push_back(ptr);
}

MemStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.live;
  stats_.peak_total = stats_.live_total;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_lists_)
    for (void* p : blocks) backend_->free(p, size);
  free_lists_.clear();
  stats_.cached = 0;
}

#ifndef ZT_WITH_CUDA
CachingAllocator& device_allocator(int device) {
  fail("no allocator for cuda:{}: zerotrain was built without CUDA", device);
}
MemStats device_memory_stats(int device) { return device_allocator(device).stats(); }
#endif

}  // namespace zt
