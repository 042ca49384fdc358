// Transfers between neighbours of a ring of ranks on one host, through shared memory. Our
// ring collectives only ever send to rank + 1 and receive from rank - 1, so each rank owns one
// channel (the one it receives on: a header and two slots of kRingPieceBytes) and maps its
// successor's to send. A byte is copied into a slot and read out of it where it lies (added in
// by a reduce-scatter, copied to its place by an all-gather), with no blocking system call
// while both sides keep pace (a futex wait only when one waits), where Gloo's TCP transport
// takes each byte through the kernel's socket buffers (gpt2-124m, 2 ranks under zt launch:
// stage 2 went from 1.10-1.16 to 0.94-0.95 s per step, stage 3 from 1.18-1.20 to 1.00).
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "parallel/store.h"

namespace zt {

// A neighbour that did not keep pace within the deadline (stuck or dead).
struct ShmTimeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ShmRingLink {
 public:
  using Clock = std::chrono::steady_clock;

  // Rendezvous of the world's ranks through the store, under `prefix` (unique per launch
  // attempt): every rank creates its channel with its pages reserved, opens its successor's,
  // and removes its channel's name once its predecessor has opened it, so that nothing is left
  // in /dev/shm. All ranks agree: when any rank cannot create its channel (a /dev/shm too
  // small, no shared memory), every rank gets nullptr and `why_not` says which and why.
  static std::unique_ptr<ShmRingLink> connect(StoreClient& store, const std::string& prefix, int rank, int world,
                                              std::string* why_not);
  ~ShmRingLink();
  ShmRingLink(const ShmRingLink&) = delete;
  ShmRingLink& operator=(const ShmRingLink&) = delete;

  // The largest message.
  static int64_t slot_bytes();

  // Sends `bytes` (at most slot_bytes()) to the successor while receiving as many from the
  // predecessor, and hands them to `consume` in their slot (freed once it returns); throws
  // ShmTimeout naming the neighbour when either side waits past `deadline`.
  void sendrecv(const void* send, int64_t bytes, Clock::time_point deadline,
                const std::function<void(const void* received)>& consume);

 private:
  struct Channel;
  ShmRingLink(int rank, int world, Channel* in, Channel* out, size_t map_bytes);
  int rank_, world_;
  Channel* in_;   // ours: the predecessor writes, we read
  Channel* out_;  // the successor's: we write, it reads
  size_t map_bytes_;
  uint32_t sent_ = 0, received_ = 0;
};

}  // namespace zt
