// The communicator interface: the collectives the ZeRO engine needs, asynchronous by
// default (every op returns a Work handle; blocking is op().wait()), over tensors so any
// device's backend can implement it. Rendezvous is not its business: backends are handed
// what they need to connect.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/tensor.h"

namespace zt {

enum class ReduceOp : uint8_t { sum, avg, max };
enum class CommOp : uint8_t { all_reduce, reduce_scatter, all_gather, broadcast, barrier };
inline constexpr int kNumCommOps = 5;
std::string_view comm_op_name(CommOp op);

class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;            // blocks until done; rethrows the op's error
  virtual bool is_completed() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

// Per-op counters. bytes_sent is what this rank sends under the ring algorithm the volume
// formulas assume (all-reduce 2(W-1)/W of the buffer, reduce-scatter and all-gather (W-1)/W
// of the full buffer, broadcast the buffer from the root), so tests can check ZeRO's volumes.
struct CommStats {
  std::array<int64_t, kNumCommOps> calls{};
  std::array<int64_t, kNumCommOps> bytes_sent{};
  std::array<double, kNumCommOps> busy_s{};  // time the backend spent executing the op
  double exposed_s = 0;                      // time callers spent blocked in wait()
  int64_t total_bytes() const;
  double total_busy_s() const;
  CommStats& operator+=(const CommStats& other);  // a wrapper's own counts plus its inner backend's
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string_view backend() const = 0;

  // In place; same numel on every rank (any numel).
  virtual WorkPtr all_reduce(Tensor& buffer, ReduceOp op = ReduceOp::sum) = 0;
  // input numel = world * output numel; rank r receives the reduction of chunk r.
  virtual WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op = ReduceOp::sum) = 0;
  // output numel = world * input numel; chunk r of output is rank r's input. The input may
  // be a view of the rank's own chunk of the output (in place).
  virtual WorkPtr all_gather(Tensor& output, const Tensor& input) = 0;
  virtual WorkPtr broadcast(Tensor& buffer, int root) = 0;
  virtual WorkPtr barrier() = 0;

  // Virtual so that a backend built on another (staged over MPI/Gloo, NCCL beside its host
  // communicator) reports the traffic of both.
  virtual CommStats stats() const;
  virtual void reset_stats();

 protected:
  void record(CommOp op, int64_t bytes_sent, double busy_s);
  void record_exposed(double s);

 private:
  mutable std::mutex stats_mu_;
  CommStats stats_;
};

// Nominal per-rank bytes sent by a ring implementation of `op` on a buffer of `bytes`
// (the full buffer for reduce-scatter and all-gather).
int64_t ring_bytes_sent(CommOp op, int64_t bytes, int world, bool is_root = false);

// For backends: ReduceOp::avg after the sum, in place (f32, f64, or bf16 rounded back).
void divide_by_world(Tensor& t, int world);

// A world of one: every collective is the identity and completes at once.
std::unique_ptr<Communicator> make_single_process_comm();

}  // namespace zt
