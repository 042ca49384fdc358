#include "parallel/comm_thread.h"

#include <chrono>

#include "core/profiler.h"

namespace zt {

struct CommThread::Task : Work {
  std::function<void()> fn;
  std::function<void(double)> on_blocked;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;

  void wait() override {
    std::unique_lock<std::mutex> lock(mu);
    if (!done) {
      const auto t0 = std::chrono::steady_clock::now();
      profiler::Scope span(profiler::Category::comm_wait, "wait");
      cv.wait(lock, [&] { return done; });
      if (on_blocked) on_blocked(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (error) std::rethrow_exception(error);
  }
  bool is_completed() override {
    std::lock_guard<std::mutex> lock(mu);
    return done;
  }
};

CommThread::CommThread() : thread_([this] { run(); }) {}

CommThread::~CommThread() { stop(); }

void CommThread::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

WorkPtr CommThread::submit(std::function<void()> fn, std::function<void(double)> on_blocked) {
  auto task = std::make_shared<Task>();
  task->fn = std::move(fn);
  task->on_blocked = std::move(on_blocked);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(task);
  }
  cv_.notify_one();
  return task;
}

void CommThread::run() {
  profiler::set_thread_name("comm");
  for (;;) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = queue_.front();
      queue_.pop_front();
    }
    try {
      task->fn();
    } catch (...) {
      task->error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(task->mu);
      task->done = true;
    }
    task->cv.notify_all();
  }
}

WorkPtr ThreadedCommunicator::submit(CommOp op, int64_t bytes_sent, std::function<void()> fn) {
  return thread_.submit(
      [this, op, bytes_sent, fn = std::move(fn)] {
        const auto t0 = std::chrono::steady_clock::now();
        // Every collective runs over all ranks: the group is always "world" for now.
        profiler::Scope span(profiler::Category::comm, comm_op_name(op).data(), bytes_sent, "world");
        fn();
        record(op, bytes_sent, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      },
      [this](double s) { record_exposed(s); });
}

}  // namespace zt
