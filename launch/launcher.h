// `zt launch`: a torchrun-style launcher. It starts the workers of this node with RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and ZT_RESTART_COUNT),
// serves the rendezvous store on node 0, prefixes each worker's output with its rank,
// forwards SIGINT, SIGTERM and SIGUSR1 (the workers save a checkpoint and exit; a second
// signal is forwarded too and stops them at once), and when a worker fails kills the others
// and, while restarts remain, starts the group again (it resumes from the last complete
// checkpoint).
#pragma once
#include <string>
#include <vector>

namespace zt {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int max_restarts = 0;
  double stop_timeout_s = 300;  // after forwarding a signal, how long saving may take
  std::vector<std::string> command;
};

// Returns the exit code for the launcher: 0 when every worker succeeded, else the failing
// worker's code (128 + signal for a worker killed by a signal).
int run_launcher(const LaunchOptions& options);

}  // namespace zt
