#include "core/profiler.h"

#include <chrono>
#include <memory>
#include <mutex>

namespace zt::profiler {

namespace detail {
std::atomic<bool> g_recording{false};
}  // namespace detail

namespace {

std::atomic<int64_t> g_step{0};

// One per thread that ever recorded, owned by the registry so spans outlive their thread.
struct Buffer {
  std::mutex mu;  // uncontended except against collect()
  ThreadSpans data;
};

struct Registry {
  std::mutex mu;
  std::vector<std::shared_ptr<Buffer>> buffers;
};

Registry& registry() {
  static Registry r;
  return r;
}

Buffer& this_thread_buffer() {
  thread_local std::shared_ptr<Buffer> buffer = [] {
    auto b = std::make_shared<Buffer>();
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    b->data.tid = static_cast<int>(r.buffers.size());
    b->data.thread = "thread " + std::to_string(b->data.tid);
    b->data.spans.reserve(4096);
    r.buffers.push_back(b);
    return b;
  }();
  return *buffer;
}

}  // namespace

const char* category_name(Category c) {
  static constexpr const char* kNames[kNumCategories] = {"step",      "data",      "forward",    "backward",
                                                         "recompute", "optimizer", "comm",       "comm_wait",
                                                         "checkpoint", "eval"};
  return kNames[static_cast<int>(c)];
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void set_thread_name(const char* name) {
  Buffer& b = this_thread_buffer();
  std::lock_guard<std::mutex> lock(b.mu);
  b.data.thread = name;
}

void start(int64_t step) {
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (auto& b : r.buffers) {
      std::lock_guard<std::mutex> block(b->mu);
      b->data.spans.clear();
    }
  }
  g_step.store(step, std::memory_order_relaxed);
  detail::g_recording.store(true, std::memory_order_release);
}

void set_step(int64_t step) { g_step.store(step, std::memory_order_relaxed); }

void stop() { detail::g_recording.store(false, std::memory_order_release); }

std::vector<ThreadSpans> collect() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<ThreadSpans> out;
  for (auto& b : r.buffers) {
    std::lock_guard<std::mutex> block(b->mu);
    out.push_back(b->data);
  }
  return out;
}

void detail::record(const Span& span) {
  Buffer& b = this_thread_buffer();
  std::lock_guard<std::mutex> lock(b.mu);
  b.data.spans.push_back(span);
  b.data.spans.back().step = g_step.load(std::memory_order_relaxed);
}

}  // namespace zt::profiler
