#include "core/log.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <fmt/format.h>

#include "core/error.h"

namespace zt::log {

namespace {

bool g_shared = true;  // this process logs the messages every rank reaches alike

}  // namespace

bool use_color(const std::function<const char*(const char*)>& env, bool stdout_is_tty) {
  auto set = [&](const char* name) {
    const char* v = env(name);
    return v && *v;
  };
  if (const char* choice = env("ZT_COLOR"); choice && *choice) {
    const std::string_view c = choice;
    if (c == "always") return true;
    if (c == "never") return false;
    if (c != "auto") fail("ZT_COLOR={}: expected always, never or auto", c);
  }
  if (set("NO_COLOR")) return false;  // https://no-color.org: any non-empty value
  if (set("FORCE_COLOR") && std::string_view(env("FORCE_COLOR")) != "0") return true;
  for (const char* launcher_rank : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (env(launcher_rank)) return false;
  return stdout_is_tty;
}

bool logs_shared_messages() { return g_shared; }

void init(const LogOptions& options) {
  const bool color = use_color([](const char* name) { return std::getenv(name); }, isatty(STDOUT_FILENO) != 0);
  spdlog::drop("zt");
  auto logger = spdlog::stdout_color_mt("zt", color ? spdlog::color_mode::always : spdlog::color_mode::never);
  spdlog::set_default_logger(logger);
  bool silent = options.rank != 0 && !options.all_ranks;
  g_shared = !silent;
  spdlog::set_level(silent ? spdlog::level::warn : options.level);
  spdlog::set_pattern(options.all_ranks ? fmt::format("[rank {}] %^%v%$", options.rank) : "%^%v%$");
}

}  // namespace zt::log
