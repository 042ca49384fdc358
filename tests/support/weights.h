// Comparing the results of training runs: final weights and logged metrics.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "tests/support/run_dir.h"

namespace zt::testing {

// Relative difference of all parameters together, and the worst single tensor.
inline std::pair<double, double> weight_difference(const std::string& a_path, const std::string& b_path) {
  SafetensorsFile a = SafetensorsFile::open(a_path), b = SafetensorsFile::open(b_path);
  EXPECT_EQ(a.names(), b.names());
  double diff = 0, norm = 0, worst = 0;
  for (const auto& name : a.names()) {
    Tensor x = a.get(name), y = b.get(name);
    double d = 0, n = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double u = x.data<float>()[i], v = y.data<float>()[i];
      d += (u - v) * (u - v);
      n += u * u;
    }
    diff += d;
    norm += n;
    worst = std::max(worst, std::sqrt(d / std::max(n, 1e-30)));
  }
  return {std::sqrt(diff / norm), worst};
}

// Every record of a run directory's metrics.jsonl, in order.
inline std::vector<nlohmann::json> metrics_records(const std::filesystem::path& run) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(run / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline nlohmann::json last_metrics(const std::filesystem::path& run) { return metrics_records(run).back(); }

// The records that carry a step, by step.
inline std::map<int64_t, nlohmann::json> metrics_by_step(const std::filesystem::path& run) {
  std::map<int64_t, nlohmann::json> out;
  for (nlohmann::json& m : metrics_records(run)) {
    if (!m.contains("step")) continue;
    const int64_t step = m["step"].get<int64_t>();
    out[step] = std::move(m);
  }
  return out;
}

}  // namespace zt::testing
