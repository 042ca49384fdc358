// Runs inside every rank of an mpirun or zt launch job; tests/parallel/test_nccl_bootstrap.cpp
// launches it and reads what the ranks print.
//   id:       rank 0 makes an NCCL unique id (ncclGetUniqueId needs no GPU), the host
//             communicator hands it to every rank, each prints it in hex (all must agree).
//   check-in: the last rank reports a problem; every rank must stop, naming it.
//   mpirun -np N build/zt_nccl_bootstrap_check id
//   zt launch --nproc-per-node N -- build/zt_nccl_bootstrap_check check-in
#include <cstdio>
#include <cstring>
#include <string>

#include "core/runtime.h"
#include "parallel/comm_gloo.h"
#include "parallel/comm_mpi.h"
#include "parallel/nccl_bootstrap.h"
#ifdef ZT_WITH_NCCL
#include "parallel/comm_nccl.h"
#endif

using namespace zt;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto host = launched_by_mpi() ? make_mpi_comm() : make_gloo_comm(discover_rank());
  const int rank = host->rank(), world = host->world_size();
  if (mode == "check-in") {
    try {
      check_in(*host, rank == world - 1 ? "cannot open its GPU (test)" : "");
    } catch (const std::exception& e) {
      std::printf("rank %d of %d stopped: %s\n", rank, world, e.what());
      return 0;
    }
    std::printf("rank %d of %d went on\n", rank, world);
    return 1;
  }
  if (mode == "id") {
#ifdef ZT_WITH_NCCL
    const NcclIdBytes id = share_unique_id(*host, nccl_unique_id);
    std::string hex;
    for (char c : id) hex += fmt::format("{:02x}", static_cast<unsigned char>(c));
    std::printf("rank %d of %d nccl id %s (NCCL %s)\n", rank, world, hex.c_str(), nccl_version().c_str());
    host->barrier()->wait();
    return 0;
#else
    std::fprintf(stderr, "built without NCCL\n");
    return 2;
#endif
  }
  std::fprintf(stderr, "usage: zt_nccl_bootstrap_check id|check-in\n");
  return 2;
}
