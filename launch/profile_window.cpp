#include "launch/profile_window.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "core/cpu/gemm.h"
#include "core/fileio.h"
#include "core/log.h"

namespace zt {

namespace fs = std::filesystem;
using nlohmann::json;
using profiler::Category;
using profiler::kNumCategories;

namespace {

// The summary's names: the step's own time is what no nested span accounts for.
const char* summary_name(int c) {
  switch (static_cast<Category>(c)) {
    case Category::step: return "other";
    case Category::comm_wait: return "comm_exposed";
    default: return profiler::category_name(static_cast<Category>(c));
  }
}

// Categories of the compute thread, in table order (comm runs on its own thread).
constexpr Category kTableOrder[] = {Category::data,      Category::forward,   Category::backward,
                                    Category::recompute, Category::optimizer, Category::comm_wait,
                                    Category::checkpoint, Category::eval,     Category::step};

constexpr int kSummaryDoubles = kNumCategories + 5;  // step_s, categories, comm_total, gflops, mfu, peak

}  // namespace

std::vector<double> exclusive_seconds(std::vector<profiler::Span> spans) {
  std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
    return a.t0_ns != b.t0_ns ? a.t0_ns < b.t0_ns : a.t1_ns > b.t1_ns;  // parents first
  });
  std::vector<double> out(kNumCategories, 0.0);
  std::vector<const profiler::Span*> open;
  for (const auto& s : spans) {
    while (!open.empty() && open.back()->t1_ns <= s.t0_ns) open.pop_back();
    const double d = (s.t1_ns - s.t0_ns) * 1e-9;
    out[static_cast<int>(s.category)] += d;
    if (!open.empty()) out[static_cast<int>(open.back()->category)] -= d;
    open.push_back(&s);
  }
  return out;
}

json chrome_trace(const std::vector<profiler::ThreadSpans>& threads, int rank, int world, int64_t origin_ns,
                  const json& about) {
  json events = json::array();
  events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", rank}, {"args", {{"name", fmt::format("rank {}", rank)}}}});
  events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", rank}, {"args", {{"sort_index", rank}}}});
  for (const auto& t : threads) {
    if (t.spans.empty()) continue;
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", rank}, {"tid", t.tid}, {"args", {{"name", t.thread}}}});
    for (const auto& s : t.spans) {
      json args = {{"step", s.step}};
      if (s.bytes >= 0) args["bytes"] = s.bytes;
      if (s.detail) args["group"] = s.detail;
      // Microseconds with ns precision, as Chrome's trace format expects.
      events.push_back({{"ph", "X"},
                        {"name", s.name},
                        {"cat", profiler::category_name(s.category)},
                        {"ts", (s.t0_ns - origin_ns) / 1000.0},
                        {"dur", (s.t1_ns - s.t0_ns) / 1000.0},
                        {"pid", rank},
                        {"tid", t.tid},
                        {"args", args}});
    }
  }
  json other = about;
  other["rank"] = rank;
  other["world_size"] = world;
  other["clock"] = "microseconds since this rank left the barrier that opened the window";
  return {{"traceEvents", events}, {"displayTimeUnit", "ms"}, {"otherData", other}};
}

std::string format_profile_table(const std::vector<ProfileSummary>& ranks, double peak_gflops,
                                 const std::string& peak_source) {
  std::string out = fmt::format("{:<5} {:>8}", "rank", "step");
  for (Category c : kTableOrder) out += fmt::format(" {:>12}", summary_name(static_cast<int>(c)));
  out += fmt::format(" | {:>10} {:>12} | {:>8} {:>6}\n", "comm total", "comm exposed", "GFLOP/s", "MFU");
  for (const auto& r : ranks) {
    out += fmt::format("{:<5} {:>8.4f}", r.rank, r.step_s);
    for (Category c : kTableOrder) out += fmt::format(" {:>12.4f}", r.categories[static_cast<int>(c)]);
    out += fmt::format(" | {:>10.4f} {:>12.4f} | {:>8.1f} {:>5.1f}%\n", r.comm_total_s,
                       r.categories[static_cast<int>(Category::comm_wait)], r.gflops, 100 * r.mfu);
  }
  out += fmt::format("seconds per step; MFU against {:.1f} GFLOP/s per rank ({})", peak_gflops, peak_source);
  return out;
}

json profile_json(const std::vector<ProfileSummary>& ranks, int64_t first_step, int64_t last_step, double peak_gflops,
                  const std::string& peak_source) {
  json per_rank = json::array();
  for (const auto& r : ranks) {
    json cats = json::object();
    for (Category c : kTableOrder) cats[summary_name(static_cast<int>(c))] = r.categories[static_cast<int>(c)];
    per_rank.push_back({{"rank", r.rank},
                        {"step_s", r.step_s},
                        {"categories", cats},
                        {"comm_total_s", r.comm_total_s},
                        {"comm_exposed_s", r.categories[static_cast<int>(Category::comm_wait)]},
                        {"gflops", r.gflops},
                        {"mfu", r.mfu}});
  }
  return {{"start_step", first_step}, {"end_step", last_step}, {"peak_gflops", peak_gflops},
          {"peak_source", peak_source}, {"ranks", per_rank}};
}

double measure_sgemm_gflops() {
  const int64_t n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  auto run = [&] { cpu::sgemm(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); };
  run();
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  double elapsed = 0;
  while (elapsed < 0.3) {
    run();
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return 2.0 * n * n * n * reps / elapsed / 1e9;
}

ProfileWindow::ProfileWindow(const ProfileConfig& cfg, fs::path dir, Communicator& comm, int64_t first_step,
                             int64_t last_step, double flops_per_step)
    : cfg_(cfg), dir_(std::move(dir)), comm_(comm), flops_per_step_(flops_per_step) {
  if (!cfg.enabled) return;
  const int64_t first = std::max(cfg.start_step, first_step);
  const int64_t last = std::min(cfg.start_step + cfg.steps - 1, last_step);
  if (first > last) {
    log::warn_once("profile: steps {}..{} are outside the steps this run trains ({}..{}); nothing is recorded",
                   cfg.start_step, cfg.start_step + cfg.steps - 1, first_step, last_step);
    return;
  }
  first_ = first;
  last_ = last;
  profiler::set_thread_name("compute");
}

void ProfileWindow::begin_step(int64_t step) {
  if (step == first_ && active()) {
    comm_.barrier()->wait();
    origin_ns_ = profiler::now_ns();
    profiler::start(step);
  } else if (profiler::recording()) {
    profiler::set_step(step);
  }
}

std::optional<json> ProfileWindow::end_step(int64_t step) {
  if (!active() || step != last_) return std::nullopt;
  const double window_s = (profiler::now_ns() - origin_ns_) * 1e-9;
  profiler::stop();
  const int64_t steps = last_ - first_ + 1;
  const auto threads = profiler::collect();
  const int rank = comm_.rank(), world = comm_.world_size();

  ProfileSummary mine;
  mine.rank = rank;
  mine.step_s = window_s / steps;
  for (const auto& t : threads) {
    if (t.thread == "compute") {
      const auto ex = exclusive_seconds(t.spans);
      for (int c = 0; c < kNumCategories; ++c) mine.categories[c] = ex[c] / steps;
    }
    for (const auto& s : t.spans)
      if (s.category == Category::comm) mine.comm_total_s += (s.t1_ns - s.t0_ns) * 1e-9 / steps;
  }
  comm_.barrier()->wait();  // every rank measures the peak at the same time, sharing the cores alike
  const double peak = cfg_.peak_gflops > 0 ? cfg_.peak_gflops : measure_sgemm_gflops();
  const std::string peak_source = cfg_.peak_gflops > 0
                                      ? "profile.peak_gflops"
                                      : fmt::format("mean of sgemm measured on every rank at once, {} thread(s) each", omp_get_max_threads());
  mine.gflops = flops_per_step_ / mine.step_s / 1e9;
  mine.mfu = mine.gflops / peak;

  fs::create_directories(dir_);
  const fs::path file = dir_ / fmt::format("rank-{:05d}.trace.json", rank);
  const json about = {{"start_step", first_}, {"end_step", last_}, {"peak_gflops", peak}};
  write_file_atomic(file, chrome_trace(threads, rank, world, origin_ns_, about).dump());

  Tensor packed = Tensor::empty({kSummaryDoubles}, DType::f64, MemTag::comm);
  double* p = packed.data<double>();
  p[0] = mine.step_s;
  for (int c = 0; c < kNumCategories; ++c) p[1 + c] = mine.categories[c];
  p[kNumCategories + 1] = mine.comm_total_s;
  p[kNumCategories + 2] = mine.gflops;
  p[kNumCategories + 3] = mine.mfu;
  p[kNumCategories + 4] = peak;
  Tensor all = Tensor::empty({kSummaryDoubles * world}, DType::f64, MemTag::comm);
  comm_.all_gather(all, packed)->wait();
  std::vector<ProfileSummary> ranks(world);
  double mean_peak = 0;
  for (int r = 0; r < world; ++r) {
    const double* q = all.data<double>() + r * kSummaryDoubles;
    ranks[r].rank = r;
    ranks[r].step_s = q[0];
    for (int c = 0; c < kNumCategories; ++c) ranks[r].categories[c] = q[1 + c];
    ranks[r].comm_total_s = q[kNumCategories + 1];
    ranks[r].gflops = q[kNumCategories + 2];
    ranks[r].mfu = q[kNumCategories + 3];
    mean_peak += q[kNumCategories + 4] / world;
  }
  log::info("profile of steps {}..{} ({} rank(s)); traces in {} (merge: zt trace merge {} -o merged.json)\n{}", first_,
            last_, world, dir_.string(), dir_.string(), format_profile_table(ranks, mean_peak, peak_source));
  return profile_json(ranks, first_, last_, mean_peak, peak_source);
}

}  // namespace zt
