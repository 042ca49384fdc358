// Comparing the results of two training runs: final weights and last logged metrics.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>

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

inline nlohmann::json last_metrics(const std::filesystem::path& run) {
  std::istringstream in(read_file(run / "metrics.jsonl"));
  std::string line, last;
  while (std::getline(in, line)) last = line;
  return nlohmann::json::parse(last);
}

}  // namespace zt::testing
