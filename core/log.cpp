#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <fmt/format.h>

namespace zt::log {

void init(const LogOptions& options) {
  spdlog::drop("zt");
  auto logger = spdlog::stdout_color_mt("zt");
  spdlog::set_default_logger(logger);
  bool silent = options.rank != 0 && !options.all_ranks;
  spdlog::set_level(silent ? spdlog::level::warn : options.level);
  spdlog::set_pattern(options.all_ranks ? fmt::format("[rank {}] %^%v%$", options.rank) : "%^%v%$");
}

}  // namespace zt::log
