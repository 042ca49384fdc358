// The span recorder: nothing recorded while off, per-thread buffers and names, exclusive
// time of nested spans, and the Chrome trace events written from them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "core/profiler.h"
#include "launch/profile_window.h"

namespace zt {
namespace {

using profiler::Category;
using profiler::Span;

const profiler::ThreadSpans* find_thread(const std::vector<profiler::ThreadSpans>& all, const std::string& name) {
  for (const auto& t : all)
    if (t.thread == name) return &t;
  return nullptr;
}

TEST(Profiler, RecordsOnlyWhileOnPerThreadWithStepLabels) {
  profiler::set_thread_name("test-main");
  { profiler::Scope s(Category::forward, "before"); }
  profiler::start(7);
  {
    profiler::Scope outer(Category::step, "step");
    profiler::Scope inner(Category::forward, "block.0", -1);
  }
  profiler::set_step(8);
  std::thread other([] {
    profiler::set_thread_name("test-other");
    profiler::Scope s(Category::comm, "all_reduce", 4096, "world");
  });
  other.join();
  profiler::stop();
  { profiler::Scope s(Category::forward, "after"); }

  const auto all = profiler::collect();
  const auto* main = find_thread(all, "test-main");
  const auto* comm = find_thread(all, "test-other");
  ASSERT_TRUE(main && comm);
  ASSERT_EQ(main->spans.size(), 2u);
  EXPECT_STREQ(main->spans[0].name, "block.0");  // completion order: inner first
  EXPECT_STREQ(main->spans[1].name, "step");
  EXPECT_EQ(main->spans[0].step, 7);
  EXPECT_LE(main->spans[1].t0_ns, main->spans[0].t0_ns);
  EXPECT_GE(main->spans[1].t1_ns, main->spans[0].t1_ns);
  ASSERT_EQ(comm->spans.size(), 1u);
  EXPECT_EQ(comm->spans[0].bytes, 4096);
  EXPECT_STREQ(comm->spans[0].detail, "world");
  EXPECT_EQ(comm->spans[0].step, 8);
  EXPECT_NE(main->tid, comm->tid);

  profiler::start(1);  // a new recording starts empty
  profiler::stop();
  for (const auto& t : profiler::collect()) EXPECT_TRUE(t.spans.empty()) << t.thread;
}

Span span(Category c, int64_t t0, int64_t t1) {
  Span s;
  s.category = c;
  s.t0_ns = t0;
  s.t1_ns = t1;
  return s;
}

TEST(Profiler, ExclusiveTimeSubtractsNestedSpans) {
  // step [0, 100): forward [10, 40) holding a wait [20, 30), backward [40, 90), optimizer [90, 100)
  const std::vector<Span> spans = {span(Category::comm_wait, 20, 30), span(Category::forward, 10, 40),
                                   span(Category::backward, 40, 90), span(Category::optimizer, 90, 100),
                                   span(Category::step, 0, 100)};
  const auto ex = exclusive_seconds(spans);
  EXPECT_NEAR(ex[static_cast<int>(Category::step)], 10e-9, 1e-15);
  EXPECT_NEAR(ex[static_cast<int>(Category::forward)], 20e-9, 1e-15);
  EXPECT_NEAR(ex[static_cast<int>(Category::comm_wait)], 10e-9, 1e-15);
  EXPECT_NEAR(ex[static_cast<int>(Category::backward)], 50e-9, 1e-15);
  EXPECT_NEAR(ex[static_cast<int>(Category::optimizer)], 10e-9, 1e-15);
  double total = 0;
  for (double d : ex) total += d;
  EXPECT_NEAR(total, 100e-9, 1e-15) << "exclusive times add up to the outermost span";
}

TEST(Profiler, ChromeTraceHasTheRequiredFields) {
  profiler::ThreadSpans t;
  t.thread = "compute";
  t.tid = 3;
  Span s = span(Category::comm, 2'000, 5'500);
  s.name = "all_gather";
  s.bytes = 1024;
  s.detail = "world";
  s.step = 4;
  t.spans = {s};
  const auto trace = chrome_trace({t}, 1, 2, 1'000, {{"start_step", 4}});
  ASSERT_TRUE(trace.contains("traceEvents"));
  bool saw_span = false, saw_thread_name = false, saw_process_name = false;
  for (const auto& e : trace["traceEvents"]) {
    EXPECT_EQ(e["pid"], 1);
    if (e["ph"] == "X") {
      saw_span = true;
      EXPECT_EQ(e["name"], "all_gather");
      EXPECT_EQ(e["cat"], "comm");
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 1.0);   // microseconds after the origin
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 3.5);
      EXPECT_EQ(e["tid"], 3);
      EXPECT_EQ(e["args"]["bytes"], 1024);
      EXPECT_EQ(e["args"]["group"], "world");
      EXPECT_EQ(e["args"]["step"], 4);
    } else if (e["name"] == "thread_name") {
      saw_thread_name = e["args"]["name"] == "compute" && e["tid"] == 3;
    } else if (e["name"] == "process_name") {
      saw_process_name = e["args"]["name"] == "rank 1";
    }
  }
  EXPECT_TRUE(saw_span && saw_thread_name && saw_process_name) << trace.dump(1);
  EXPECT_EQ(trace["otherData"]["rank"], 1);
  EXPECT_EQ(trace["otherData"]["world_size"], 2);
  EXPECT_EQ(trace["otherData"]["start_step"], 4);
}

}  // namespace
}  // namespace zt
