// Where this process sits in the job: rank, local rank and world size, read from the
// launcher's environment (mpirun, torchrun-style launchers such as `zt launch`, or Slurm).
#pragma once
#include <string>

namespace zt {

struct RankInfo {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr;  // torchrun-style rendezvous, empty otherwise
  int master_port = 0;
  std::string launcher = "none";  // "mpirun", "torchrun", "slurm" or "none"
};

// Reads OMPI_COMM_WORLD_* (mpirun), RANK/LOCAL_RANK/WORLD_SIZE/LOCAL_WORLD_SIZE/MASTER_ADDR/
// MASTER_PORT (torchrun, zt launch) or SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS/... in that
// order. Malformed values are errors naming the variable.
RankInfo discover_rank();

// OpenMP threads per rank: `configured` if > 0, else the cores of this node divided evenly
// between the ranks on it (at least 1).
int threads_per_rank(int configured, const RankInfo& info);

}  // namespace zt
