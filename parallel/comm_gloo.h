// Gloo backend (TCP transport) for ranks started torchrun-style (`zt launch`): ranks meet
// through the TCP store at MASTER_ADDR:MASTER_PORT, then Gloo connects a full mesh. Like
// the MPI backend, collectives run on one communication thread in submission order.
#pragma once
#include <chrono>
#include <memory>

#include "core/runtime.h"
#include "parallel/comm.h"

namespace zt {

// A collective that does not complete within `timeout` (a rank is stuck or dead) fails on
// the ranks that wait, naming the ranks that never arrived.
std::unique_ptr<Communicator> make_gloo_comm(const RankInfo& where,
                                             std::chrono::milliseconds timeout = std::chrono::minutes(5));

}  // namespace zt
