// MPI backend (OpenMPI): every collective runs on one communication thread, in submission
// order, so compute overlaps communication even though OpenMPI progresses nonblocking
// collectives only inside MPI calls.
#pragma once
#include <memory>

#include "parallel/comm.h"

namespace zt {

// True when this process was started by an MPI launcher (mpirun / srun with PMIx).
bool launched_by_mpi();
// Initializes MPI on first use (MPI_THREAD_SERIALIZED: only the comm thread calls MPI after
// init) and returns the world communicator. MPI is finalized at exit.
std::unique_ptr<Communicator> make_mpi_comm();

}  // namespace zt
