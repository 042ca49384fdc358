// Logging through spdlog. Rank 0 logs by default; with all_ranks every rank logs and each line
// carries a "[rank r]" prefix.
#pragma once
#include <spdlog/spdlog.h>

namespace zt::log {

struct LogOptions {
  int rank = 0;
  bool all_ranks = false;
  spdlog::level::level_enum level = spdlog::level::info;
};

void init(const LogOptions& options = {});

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

}  // namespace zt::log
