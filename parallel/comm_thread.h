// A FIFO of collective operations executed by one background thread. Backends whose
// library calls block (MPI, Gloo) use it to make every op asynchronous; every rank submits
// collectives in the same order, so executing them in FIFO order is deadlock-free.
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "parallel/comm.h"

namespace zt {

class CommThread {
 public:
  CommThread();
  ~CommThread();
  // Queues `fn`; the returned Work completes when fn returns (or rethrows what it threw).
  // `on_blocked` is told how long a caller waited in wait(), for exposed-time accounting.
  WorkPtr submit(std::function<void()> fn, std::function<void(double)> on_blocked);
  void stop();  // runs what is queued, then joins

 private:
  struct Task;
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Task>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// A communicator whose collectives run on a CommThread, timed and counted.
class ThreadedCommunicator : public Communicator {
 protected:
  WorkPtr submit(CommOp op, int64_t bytes_sent, std::function<void()> fn);
  void stop_thread() { thread_.stop(); }

 private:
  CommThread thread_;
};

}  // namespace zt
