#include "core/runtime.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace zt {

namespace {

const char* env(const char* name) { return std::getenv(name); }

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  if (!v) return fallback;
  int out = 0;
  const char* end = v + std::char_traits<char>::length(v);
  auto [p, ec] = std::from_chars(v, end, out);
  if (ec != std::errc() || p != end || out < 0) fail("environment variable {}={} is not a non-negative integer", name, v);
  return out;
}

}  // namespace

RankInfo discover_rank() {
  RankInfo r;
  if (env("OMPI_COMM_WORLD_SIZE")) {
    r.launcher = "mpirun";
    r.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    r.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    r.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    r.local_world_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (env("WORLD_SIZE") && env("RANK")) {
    r.launcher = "torchrun";
    r.rank = env_int("RANK", 0);
    r.world_size = env_int("WORLD_SIZE", 1);
    r.local_rank = env_int("LOCAL_RANK", 0);
    r.local_world_size = env_int("LOCAL_WORLD_SIZE", 1);
    r.master_addr = env("MASTER_ADDR") ? env("MASTER_ADDR") : "127.0.0.1";
    r.master_port = env_int("MASTER_PORT", 29500);
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    r.launcher = "slurm";
    r.rank = env_int("SLURM_PROCID", 0);
    r.world_size = env_int("SLURM_NTASKS", 1);
    r.local_rank = env_int("SLURM_LOCALID", 0);
    r.local_world_size = env_int("SLURM_NTASKS_PER_NODE", 1);
  }
  if (r.world_size < 1 || r.rank >= r.world_size)
    fail("rank {} is outside a world of {} (launcher {})", r.rank, r.world_size, r.launcher);
  if (r.local_world_size < 1 || r.local_rank >= r.local_world_size)
    fail("local rank {} is outside a node of {} ranks (launcher {})", r.local_rank, r.local_world_size, r.launcher);
  return r;
}

int threads_per_rank(int configured, const RankInfo& info) {
  if (configured > 0) return configured;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, info.local_world_size));
}

}  // namespace zt
