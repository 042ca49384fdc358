// Span recording for trace export. A span is a named, categorized interval on one thread
// (the training loop's "compute" thread, the communicator's "comm" thread). Spans are kept
// in per-thread buffers only while recording is on; with recording off a span costs one
// relaxed atomic load and a branch, so the instrumentation stays in the code permanently.
//
//   { profiler::Scope s(profiler::Category::forward, unit.name()); ... }
//
// Names and details must outlive the recording (string literals, unit names).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace zt::profiler {

enum class Category : uint8_t {
  step,        // one training step (parent of the rest)
  data,        // reading and batching samples
  forward,     // one unit's forward
  backward,    // one unit's backward
  recompute,   // one unit's forward again, during backward (activation checkpointing)
  optimizer,   // clipping and the optimizer step
  comm,        // one collective, on the communication thread
  comm_wait,   // the compute thread blocked on a collective (exposed communication)
  checkpoint,  // saving a checkpoint
  eval,        // validation
};
inline constexpr int kNumCategories = 10;
const char* category_name(Category c);

struct Span {
  int64_t t0_ns = 0, t1_ns = 0;  // steady clock
  const char* name = "";
  const char* detail = nullptr;   // collectives: the op's group
  int64_t bytes = -1;             // collectives: bytes this rank sends; -1 = not applicable
  int64_t step = 0;
  Category category = Category::step;
};

struct ThreadSpans {
  std::string thread;  // "compute", "comm", ...
  int tid = 0;         // in order of first use
  std::vector<Span> spans;  // in order of completion
};

namespace detail {
extern std::atomic<bool> g_recording;
void record(const Span& span);
}  // namespace detail

inline bool recording() { return detail::g_recording.load(std::memory_order_relaxed); }
int64_t now_ns();

// Names the calling thread in traces (default "thread N").
void set_thread_name(const char* name);
// Clears every buffer and starts recording; `step` labels spans until set_step changes it.
void start(int64_t step);
void set_step(int64_t step);
void stop();
// Every thread's spans of the last recording. Call after stop().
std::vector<ThreadSpans> collect();

class Scope {
 public:
  Scope(Category category, const char* name, int64_t bytes = -1, const char* detail = nullptr) {
    if (!recording()) return;
    active_ = true;
    span_.category = category;
    span_.name = name;
    span_.bytes = bytes;
    span_.detail = detail;
    span_.t0_ns = now_ns();
  }
  ~Scope() {
    if (!active_) return;
    span_.t1_ns = now_ns();
    detail::record(span_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool active_ = false;
  Span span_;
};

}  // namespace zt::profiler
