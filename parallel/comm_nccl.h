// parallel.backend: nccl. Collectives on device tensors with NCCL, on a communication stream
// of its own ordered after the compute stream by events; a Work's wait() makes the compute
// stream wait for the op (the host never blocks). Host tensors (the trainer's scalars,
// checkpoint agreement) and barrier() go to the host communicator that also bootstrapped
// NCCL. Exists only in a build with NCCL (ZT_WITH_NCCL); libnccl.so.2 is loaded at first use.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "core/runtime.h"
#include "parallel/comm.h"
#include "parallel/nccl_bootstrap.h"

namespace zt {

// Rank r drives cuda:LOCAL_RANK. Initialization is collective and non-blocking: a rank that
// is not connected within `timeout` fails, naming the ranks that never arrived (under zt
// launch; mpirun gives no store to ask).
std::unique_ptr<Communicator> make_nccl_comm(std::unique_ptr<Communicator> host, const RankInfo& where,
                                             std::chrono::milliseconds timeout);

// ncclGetUniqueId of the loaded library (needs no GPU: it only picks a bootstrap address).
NcclIdBytes nccl_unique_id();
// "2.28.9": the version of the libnccl.so.2 that was loaded; throws when it cannot be loaded.
std::string nccl_version();

}  // namespace zt
