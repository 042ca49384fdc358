// Collectives as a ring of point-to-point transfers between neighbours, for host backends
// whose own are slow or missing, or that move bytes faster their own way (Gloo's ranks on one
// host, through shared memory: parallel/shm_ring.h). Reduce-scatter: OpenMPI 4.1's
// MPI_Reduce_scatter_block took 123-153 ms on a 160 MiB buffer at 2 ranks here, twice its
// MPI_Allreduce of the same buffer, where one sendrecv and an add took 35; Gloo's options API
// has none.
#pragma once
#include <functional>

#include "parallel/comm.h"

namespace zt {

// The largest piece sent at once; each reduce-scatter holds two (received, and the partial sum).
constexpr int64_t kRingPieceBytes = 4 << 20;

// What a ring step does with the bytes it receives (add them in, or store them), called with
// them wherever the transport holds them; they are gone once it returns.
using Consume = std::function<void(const void* received)>;

// Sends `bytes` from `send` to rank `to` while as many arrive from rank `from`, hands them to
// `consume`, and returns when both are done. A transport that receives into the caller's
// memory (MPI, Gloo over TCP) receives into `scratch` (bytes long); one that has them in its
// own (shared memory) hands over those, so that a reduce-scatter adds straight from there
// instead of copying them out first. `consume` runs only once `send` has been read: it may
// write over it (the reduce-scatter's partial sum).
using SendRecv =
    std::function<void(const void* send, int to, int from, int64_t bytes, void* scratch, const Consume& consume)>;

// output (n) = chunk `rank` of the elementwise reduction of every rank's input (world * n).
// Each chunk travels the ring once, in pieces of at most kRingPieceBytes (W-1 steps each, every rank
// sending (W-1)/W of its input, as ring_bytes_sent counts), picking up each rank's part;
// chunk c is summed in the order c+1, c+2, ..., c, the same in every run. bf16 sums in f32
// and rounds at every hop, as the backends' bf16 all-reduce does. output may be input's own
// chunk `rank` (in place), not any other part of it.
void ring_reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op, int rank, int world,
                         const SendRecv& sendrecv);

// output (world * n) = every rank's input (n) in rank order. Each chunk travels the ring once,
// in pieces of at most kRingPieceBytes, straight into its place in output; every rank sends
// (W-1)/W of output. input may be output's own chunk `rank` (in place), not any other part.
void ring_all_gather(Tensor& output, const Tensor& input, int rank, int world, const SendRecv& sendrecv);

// buffer = the elementwise reduction of every rank's buffer, in place: a ring reduce-scatter
// then a ring all-gather of W equal chunks (each rank sends 2(W-1)/W of the buffer), the last
// n % W elements as a second, W-element round. Every rank ends with the same bits.
void ring_all_reduce(Tensor& buffer, ReduceOp op, int rank, int world, const SendRecv& sendrecv);

}  // namespace zt
