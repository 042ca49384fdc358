// Caching allocators with live and peak bytes per tag, one class for host and device memory.
//
// Touching fresh memory is expensive (page faults on the host, cudaMalloc's implicit sync on a
// GPU), so freed blocks stay in per-size free lists and are reused: after the first step a
// training loop allocates nothing new. Live bytes count blocks handed out (by rounded size);
// cached bytes count blocks held for reuse. Where the memory comes from is the backend's
// business (aligned host pages, cudaMalloc, or a fake with a capacity in tests).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zt {

enum class MemTag : uint8_t { params, grads, optimizer, activations, comm, workspace, other };
inline constexpr int kNumMemTags = 7;
std::string_view mem_tag_name(MemTag tag);

struct MemStats {
  std::array<int64_t, kNumMemTags> live{};  // bytes handed out now, per tag
  std::array<int64_t, kNumMemTags> peak{};  // highest live bytes per tag since the last reset
  int64_t live_total = 0;
  int64_t peak_total = 0;  // peak of the sum over tags (not the sum of per-tag peaks)
  int64_t cached = 0;      // bytes held in free lists for reuse
  int64_t live_of(MemTag t) const { return live[static_cast<int>(t)]; }
  int64_t peak_of(MemTag t) const { return peak[static_cast<int>(t)]; }
};

// Where blocks come from. allocate returns null when the memory is exhausted (the caching
// allocator then releases its cache and retries once before it reports).
class AllocatorBackend {
 public:
  virtual ~AllocatorBackend() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void free(void* ptr, size_t bytes) = 0;
  virtual std::string name() const = 0;  // "cpu", "cuda:0": named in out-of-memory errors
};

class CachingAllocator {
 public:
  explicit CachingAllocator(std::unique_ptr<AllocatorBackend> backend);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Throws zt::Error naming the requested bytes and the live bytes per tag when the backend
  // stays out of memory after the cache is released.
  void* allocate(size_t bytes, MemTag tag);
  void deallocate(void* ptr, size_t bytes, MemTag tag);

  MemStats stats() const;
  void reset_peaks();       // peaks restart from the current live bytes
  void release_cached();    // return every cached block to the backend

  // Small sizes round to 64 B; larger ones to one of 8 steps per power of two (<= 12.5% waste).
  static size_t rounded_size(size_t bytes);

 private:
  void release_cached_locked();
  std::unique_ptr<AllocatorBackend> backend_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_lists_;  // rounded size -> blocks
  MemStats stats_;
};

// The process-wide host allocator (64 B aligned; 2 MiB aligned with huge pages from 4 MiB).
struct CpuAllocator {
  static CachingAllocator& instance();
  static size_t rounded_size(size_t bytes) { return CachingAllocator::rounded_size(bytes); }
};

inline MemStats memory_stats() { return CpuAllocator::instance().stats(); }

// The caching allocator of CUDA device `device` (cudaMalloc/cudaFree behind it). Without a
// CUDA build, or for a device that does not exist, these throw zt::Error.
CachingAllocator& device_allocator(int device);
MemStats device_memory_stats(int device);

}  // namespace zt
