// Logging through spdlog. Rank 0 logs by default; with all_ranks every rank logs and each line
// carries a "[rank r]" prefix.
#pragma once
#include <functional>

#include <spdlog/spdlog.h>

namespace zt::log {

struct LogOptions {
  int rank = 0;
  bool all_ranks = false;
  spdlog::level::level_enum level = spdlog::level::info;
};

void init(const LogOptions& options = {});

// Whether log lines carry colour, from the environment (`env` returns a variable or null) and
// whether stdout is a terminal. ZT_COLOR=always|never|auto decides first, then NO_COLOR and
// FORCE_COLOR; auto colours a terminal, except under mpirun or Slurm, which hand every rank a
// pty whose escape codes end up in the job's log files.
bool use_color(const std::function<const char*(const char*)>& env, bool stdout_is_tty);

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

// A warning every rank reaches alike (a decision the ranks took together): logged by rank 0
// only, or by every rank with log.all_ranks. Other ranks log their own warnings, which may
// differ, with warn().
bool logs_shared_messages();
template <class... Args> void warn_once(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  if (logs_shared_messages()) spdlog::warn(fmt, std::forward<Args>(args)...);
}

}  // namespace zt::log
