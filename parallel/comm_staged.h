// parallel.backend: staged. Collectives on device tensors through a host backend (MPI or
// Gloo): each op copies its device buffers into pinned host buffers (a pool kept across
// steps), runs the host collective, and copies the result back on the compute stream. Host
// tensors pass straight through. Slower than NCCL (two bus copies per op, and the host waits
// for the compute stream when an op is submitted), but it runs wherever the host backend
// does, several ranks on one GPU included.
#pragma once
#include <memory>

#include "parallel/comm.h"

namespace zt {

struct StagedOptions {
  // Stage host tensors too (through plain host buffers), so tests exercise the staging
  // copies, aliasing and buffer reuse on machines without a GPU.
  bool stage_host_tensors = false;
};

std::unique_ptr<Communicator> make_staged_comm(std::unique_ptr<Communicator> host, StagedOptions options = {});

}  // namespace zt
