// Caching host allocator with live and peak bytes per tag.
//
// Touching a fresh page is expensive and glibc hands big blocks back to the OS on free, so
// freed blocks stay in per-size free lists and are reused: after the first step a training loop
// allocates nothing new from the OS. Live bytes count blocks handed out (by rounded size);
// cached bytes count blocks held for reuse.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
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

class CpuAllocator {
 public:
  static CpuAllocator& instance();

  void* allocate(size_t bytes, MemTag tag);
  void deallocate(void* ptr, size_t bytes, MemTag tag);

  MemStats stats() const;
  void reset_peaks();       // peaks restart from the current live bytes
  void release_cached();    // return every cached block to the OS

  static size_t rounded_size(size_t bytes);

 private:
  CpuAllocator() = default;
  ~CpuAllocator();
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_lists_;  // rounded size -> blocks
  MemStats stats_;
};

inline MemStats memory_stats() { return CpuAllocator::instance().stats(); }

}  // namespace zt
