// The profiled window of a training run (profile.start_step, profile.steps): every rank
// records spans, writes them as a Chrome trace (DIR/rank-00000.trace.json, pid = rank, one
// tid per thread), and the ranks gather a summary (seconds per step by category, comm total
// vs exposed, FLOP/s and MFU) that rank 0 prints and adds to metrics.jsonl.
//
// Clocks: each rank's timestamps count from its exit of a barrier opening the window, so
// the ranks' files share one timeline (to within the barrier's skew) and merge by
// concatenation.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/profiler.h"
#include "parallel/comm.h"

namespace zt {

// Per-rank summary of a recorded window, seconds per step.
struct ProfileSummary {
  int rank = 0;
  double step_s = 0;
  double categories[profiler::kNumCategories] = {};  // exclusive time (nested spans subtracted)
  double comm_total_s = 0;                             // on the communication thread
  double gflops = 0, mfu = 0;
};

// Exclusive time per category of one thread's spans (each span minus its nested children).
std::vector<double> exclusive_seconds(std::vector<profiler::Span> spans);

// Chrome trace JSON of one rank's spans, timestamps relative to `origin_ns`.
nlohmann::json chrome_trace(const std::vector<profiler::ThreadSpans>& threads, int rank, int world,
                            int64_t origin_ns, const nlohmann::json& about);

// The summary table (one row per rank) and the metrics.jsonl "profile" record.
std::string format_profile_table(const std::vector<ProfileSummary>& ranks, double peak_gflops,
                                 const std::string& peak_source);
nlohmann::json profile_json(const std::vector<ProfileSummary>& ranks, int64_t first_step, int64_t last_step,
                            double peak_gflops, const std::string& peak_source);

// sgemm GFLOP/s of this process at its OpenMP thread count (about 0.3 s).
double measure_sgemm_gflops();

class ProfileWindow {
 public:
  // Steps are 1-based; the window is clamped to the steps this run executes.
  ProfileWindow(const ProfileConfig& cfg, std::filesystem::path dir, Communicator& comm, int64_t first_step,
                int64_t last_step, double flops_per_step);
  // Collective at the window's first step: a barrier, then recording starts.
  void begin_step(int64_t step);
  // Collective at the window's last step: stops, writes this rank's trace, gathers the
  // summaries. Returns the metrics record on every rank; nullopt at other steps.
  std::optional<nlohmann::json> end_step(int64_t step);
  bool active() const { return first_ > 0; }

 private:
  ProfileConfig cfg_;
  std::filesystem::path dir_;
  Communicator& comm_;
  int64_t first_ = 0, last_ = 0;  // 0: no window in this run
  double flops_per_step_;         // per rank
  int64_t origin_ns_ = 0;
};

}  // namespace zt
