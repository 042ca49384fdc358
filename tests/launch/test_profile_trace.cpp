// A profiled 2-rank stage-3 run end to end: per-rank Chrome traces (valid JSON, required
// fields, nesting spans, the same collectives with the same bytes on every rank), the
// summary table and metrics record, and `zt trace merge`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;
using testing::read_file;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

const std::string kMpirun = testing::mpirun(2) + "'" ZT_BINARY "' ";

struct Collective {
  std::string op;
  int64_t bytes;
  int64_t step;
  bool operator==(const Collective&) const = default;
};

class ProfiledRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    result_ = new testing::CommandResult(run_command(
        kMpirun + "train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp_->str() +
        " --set train.steps=6 --set train.micro_batch=2 --set train.global_batch=8 --set parallel.threads=1"
        " --set parallel.zero_stage=3 --set profile.enabled=true --set profile.start_step=3 --set profile.steps=2"
        " --set checkpoint.every=3 --set train.log_every=100"));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete tmp_;
  }
  static fs::path run_dir() { return tmp_->path() / "test-tiny-llama"; }
  static json trace(int rank) {
    return json::parse(read_file(run_dir() / "trace" / ("rank-0000" + std::to_string(rank) + ".trace.json")));
  }
  static TempDir* tmp_;
  static testing::CommandResult* result_;
};
TempDir* ProfiledRun::tmp_ = nullptr;
testing::CommandResult* ProfiledRun::result_ = nullptr;

TEST_F(ProfiledRun, EachRankWritesAValidTraceWhoseSpansNest) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  for (int rank = 0; rank < 2; ++rank) {
    const json t = trace(rank);
    EXPECT_EQ(t["otherData"]["rank"], rank);
    EXPECT_EQ(t["otherData"]["start_step"], 3);
    EXPECT_EQ(t["otherData"]["end_step"], 4);
    std::map<int, std::string> thread_names;
    std::map<int, std::vector<std::pair<double, double>>> by_tid;
    std::set<std::string> categories;
    for (const json& e : t["traceEvents"]) {
      for (const char* key : {"ph", "name", "pid"}) ASSERT_TRUE(e.contains(key)) << key << " in " << e.dump();
      EXPECT_EQ(e["pid"], rank);
      if (e["ph"] == "M") {
        if (e["name"] == "thread_name") thread_names[e["tid"]] = e["args"]["name"];
        continue;
      }
      ASSERT_EQ(e["ph"], "X");
      for (const char* key : {"ts", "dur", "tid", "cat", "args"}) ASSERT_TRUE(e.contains(key)) << key << " in " << e.dump();
      EXPECT_GE(e["dur"].get<double>(), 0);
      EXPECT_GE(e["ts"].get<double>(), 0) << "a span before the window's barrier";
      const int64_t step = e["args"]["step"];
      EXPECT_TRUE(step == 3 || step == 4) << e.dump();
      categories.insert(e["cat"]);
      by_tid[e["tid"]].push_back({e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()});
    }
    for (const char* c : {"step", "data", "forward", "backward", "optimizer", "comm", "checkpoint"})
      EXPECT_TRUE(categories.count(c)) << "rank " << rank << " has no " << c << " span";
    std::set<std::string> names;
    for (const auto& [tid, name] : thread_names) names.insert(name);
    EXPECT_TRUE(names.count("compute") && names.count("comm")) << ::testing::PrintToString(names);
    // Spans of one thread either nest or are disjoint (Chrome's "X" events require it).
    for (auto& [tid, spans] : by_tid) {
      std::sort(spans.begin(), spans.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; });
      std::vector<double> open_ends;
      for (const auto& [b, e] : spans) {
        while (!open_ends.empty() && open_ends.back() <= b + 1e-3) open_ends.pop_back();
        if (!open_ends.empty()) {
          EXPECT_LE(e, open_ends.back() + 1e-3) << "overlapping spans on tid " << tid;
        }
        open_ends.push_back(e);
      }
    }
  }
}

TEST_F(ProfiledRun, EveryCollectiveAppearsOnEveryRankWithTheSameBytes) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  std::vector<std::vector<Collective>> per_rank(2);
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::pair<double, Collective>> timed;
    const json t = trace(rank);
    for (const json& e : t["traceEvents"])
      if (e["ph"] == "X" && e["cat"] == "comm")
        timed.push_back({e["ts"].get<double>(), {e["name"], e["args"]["bytes"], e["args"]["step"]}});
    std::sort(timed.begin(), timed.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [ts, c] : timed) per_rank[rank].push_back(c);
  }
  ASSERT_GT(per_rank[0].size(), 10u) << "stage 3 gathers every unit twice per step";
  EXPECT_EQ(per_rank[0], per_rank[1]);
  std::set<std::string> ops;
  for (const auto& c : per_rank[0]) ops.insert(c.op);
  for (const char* op : {"all_gather", "reduce_scatter", "all_reduce"}) EXPECT_TRUE(ops.count(op)) << op;
}

TEST_F(ProfiledRun, PrintsTheSummaryAndRecordsItInMetrics) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_THAT(result_->output, HasSubstr("profile of steps 3..4 (2 rank(s))"));
  for (const char* col : {"forward", "backward", "optimizer", "comm total", "comm exposed", "GFLOP/s", "MFU"})
    EXPECT_THAT(result_->output, HasSubstr(col));
  EXPECT_THAT(result_->output, HasSubstr("MFU against"));
  json prof;
  for (const json& m : testing::metrics_records(run_dir())) {
    if (m.contains("profile")) {
      EXPECT_EQ(m["step"], 4);
      prof = m["profile"];
    }
  }
  ASSERT_FALSE(prof.is_null()) << "no metrics record carries the profile";
  ASSERT_EQ(prof["ranks"].size(), 2u);
  EXPECT_GT(prof["peak_gflops"].get<double>(), 0);
  for (const json& r : prof["ranks"]) {
    const double step_s = r["step_s"];
    double sum = 0;
    for (const auto& [name, s] : r["categories"].items()) {
      EXPECT_GE(s.get<double>(), -1e-6) << name;
      sum += s.get<double>();
    }
    // The categories split the step (logging between steps is outside every span).
    EXPECT_LE(sum, step_s * 1.0001);
    EXPECT_GT(sum, step_s * 0.5);
    EXPECT_GT(r["categories"]["forward"].get<double>(), 0);
    EXPECT_GT(r["comm_total_s"].get<double>(), 0);
    EXPECT_GT(r["gflops"].get<double>(), 0);
    EXPECT_GT(r["mfu"].get<double>(), 0);
    EXPECT_LT(r["mfu"].get<double>(), 1);
  }
}

TEST_F(ProfiledRun, MergePutsEveryRankOnOneTimeline) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const fs::path merged = tmp_->path() / "merged.json";
  auto r = run_zt("trace merge " + (run_dir() / "trace").string() + " -o " + merged.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("merged 2 rank trace(s)"));
  const json m = json::parse(read_file(merged));
  std::set<int> pids;
  size_t spans = 0;
  for (const json& e : m["traceEvents"]) {
    pids.insert(e["pid"].get<int>());
    spans += e["ph"] == "X";
  }
  EXPECT_EQ(pids, (std::set<int>{0, 1}));
  EXPECT_EQ(spans, [&] {
    size_t n = 0;
    for (int rank = 0; rank < 2; ++rank) {
      const json t = trace(rank);
      for (const json& e : t["traceEvents"]) n += e["ph"] == "X";
    }
    return n;
  }());

  // A missing rank is named.
  TempDir partial;
  fs::copy(run_dir() / "trace" / "rank-00000.trace.json", partial.path() / "rank-00000.trace.json");
  r = run_zt("trace merge " + partial.str() + " -o " + (partial.path() / "m.json").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("the traces of rank(s) 1 are missing"));
  EXPECT_FALSE(fs::exists(partial.path() / "m.json"));
}

}  // namespace
}  // namespace zt
