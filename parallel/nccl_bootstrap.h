// The host-side steps of starting an NCCL communicator, kept free of NCCL and CUDA so they run
// (and are tested) on any machine: which GPU a rank drives, a check-in that fails every rank
// together when one cannot start, and handing rank 0's unique id to all ranks through the host
// communicator (MPI under mpirun, Gloo over the store under zt launch): no shared file system.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "parallel/comm.h"

namespace zt {

class StoreClient;

// ncclUniqueId's size (NCCL_UNIQUE_ID_BYTES), as raw bytes.
inline constexpr size_t kNcclIdBytes = 128;
using NcclIdBytes = std::array<char, kNcclIdBytes>;

// cuda:LOCAL_RANK, or an error naming both numbers when this node shows fewer GPUs. Empty
// `problem` on success (the check-in below needs every rank's verdict, not an early throw).
struct DeviceChoice {
  Device device;
  std::string problem;
};
DeviceChoice device_for_local_rank(int local_rank, int visible_gpus);

// Every rank reports whether it can go on (`problem` empty) and learns every other rank's
// verdict (one host all-gather, so all ranks have arrived when it returns). Throws on every
// rank, naming each rank that cannot go on and why, if any cannot.
void check_in(Communicator& host, const std::string& problem);

// Rank 0 calls `make_id` (ncclGetUniqueId) and broadcasts the bytes; every rank returns them.
NcclIdBytes share_unique_id(Communicator& host, const std::function<NcclIdBytes()>& make_id);

// Marks, under zt launch, that ranks reached a point (ncclCommInitRank), so that a rank timing
// out can name the ranks that never got there. Without a store (mpirun) it cannot tell.
class ArrivalBoard {
 public:
  // `store` may be null; keys live under `prefix`.
  ArrivalBoard(StoreClient* store, std::string prefix, int world);
  void arrive(int rank);
  // "rank(s) 2, 3 never reached it" or what is known when every rank did (or no store).
  std::string describe_missing();
  std::vector<int> missing();

 private:
  StoreClient* store_;
  std::string prefix_;
  int world_;
};

}  // namespace zt
