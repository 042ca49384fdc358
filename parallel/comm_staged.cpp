#include "parallel/comm_staged.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/pinned.h"
#include "core/cuda/runtime.h"
#endif

namespace zt {

namespace {

constexpr size_t kAlign = 256;  // every staged tensor starts on a 256-byte boundary
constexpr size_t kMinBlockBytes = size_t{1} << 16;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Host buffers for staging, reused across ops and steps: an op leases a block at least as
// large as it needs and gives it back when its result has been copied out. Pinned blocks
// back device tensors; plain ones the host tensors staged in tests.
class StagingPool : public std::enable_shared_from_this<StagingPool> {
 public:
  struct Block {
    char* data = nullptr;
    size_t bytes = 0;
    bool pinned = false;
  };
  using Lease = std::shared_ptr<Block>;

  ~StagingPool() {
    for (auto& b : blocks_) free_block(*b);
  }

  Lease acquire(size_t bytes, bool pinned) {
    Block* found = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if ((*it)->pinned == pinned && (*it)->bytes >= bytes && (best == free_.end() || (*it)->bytes < (*best)->bytes))
          best = it;
      if (best != free_.end()) {
        found = *best;
        free_.erase(best);
      }
    }
    if (!found) found = allocate(std::max(std::bit_ceil(bytes), kMinBlockBytes), pinned);
    // The deleter gives the block back; it keeps the pool alive while a lease is out.
    return Lease(found, [pool = shared_from_this()](Block* b) {
      std::lock_guard<std::mutex> lock(pool->mu_);
      pool->free_.push_back(b);
    });
  }

 private:
  Block* allocate(size_t bytes, bool pinned) {
    auto b = std::make_unique<Block>();
    b->bytes = bytes;
    b->pinned = pinned;
#ifdef ZT_WITH_CUDA
    if (pinned) b->data = static_cast<char*>(cuda::alloc_pinned(bytes));
#endif
    if (!pinned) b->data = static_cast<char*>(std::aligned_alloc(kAlign, bytes));
    ZT_CHECK(b->data, "staged: cannot allocate a {} byte staging buffer (pinned: {})", bytes, pinned);
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.push_back(std::move(b));
    return blocks_.back().get();
  }

  static void free_block(Block& b) {
#ifdef ZT_WITH_CUDA
    if (b.pinned) return cuda::free_pinned(b.data);
#endif
    std::free(b.data);
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Block>> blocks_;  // every block, to free at the end
  std::vector<Block*> free_;
};

// Waits until copies into device memory from a staging block are done, so the block can be
// reused (host-to-device copies from pinned memory are asynchronous).
void wait_for_copies_into(const Device& device) {
#ifdef ZT_WITH_CUDA
  if (!device.is_cpu()) cuda::synchronize(device);
#endif
}

// The host op's Work, plus the copies back to the caller's tensors once it is done.
class StagedWork : public Work {
 public:
  StagedWork(WorkPtr host_work, std::vector<std::pair<Tensor, Tensor>> copy_back, StagingPool::Lease lease)
      : host_work_(std::move(host_work)), copy_back_(std::move(copy_back)), lease_(std::move(lease)) {}
  // The host op writes into the leased block: it must finish before the block goes back.
  ~StagedWork() override {
    if (!lease_) return;
    try {
      host_work_->wait();
    } catch (...) {  // its error was the caller's to see through wait()
    }
  }

  void wait() override {
    host_work_->wait();
    finish();
  }
  bool is_completed() override {
    if (!host_work_->is_completed()) return false;
    finish();
    return true;
  }

 private:
  void finish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!lease_) return;
    for (auto& [dst, staged] : copy_back_) dst.copy_from(staged);
    for (auto& [dst, staged] : copy_back_) wait_for_copies_into(dst.device());
    copy_back_.clear();
    lease_.reset();
  }

  WorkPtr host_work_;
  std::mutex mu_;
  std::vector<std::pair<Tensor, Tensor>> copy_back_;  // (caller's tensor, staged tensor)
  StagingPool::Lease lease_;
};

// Element offset of `inner` inside `outer` when it is a window of it (an in-place op), else -1.
int64_t offset_within(const Tensor& outer, const Tensor& inner) {
  if (!(outer.device() == inner.device()) || outer.dtype() != inner.dtype()) return -1;
  const char* o = static_cast<const char*>(outer.raw());
  const char* i = static_cast<const char*>(inner.raw());
  if (i < o || i + inner.nbytes() > o + outer.nbytes()) return -1;
  return (i - o) / static_cast<int64_t>(dtype_size(inner.dtype()));
}

class StagedComm : public Communicator {
 public:
  StagedComm(std::unique_ptr<Communicator> host, StagedOptions options)
      : host_(std::move(host)), options_(options), pool_(std::make_shared<StagingPool>()) {}

  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  std::string_view backend() const override { return "staged"; }
  // The host backend counts every op's bytes and time; staging adds only the copies.
  CommStats stats() const override { return host_->stats(); }
  void reset_stats() override { host_->reset_stats(); }

  WorkPtr all_reduce(Tensor& buffer, ReduceOp op) override {
    if (passes_through(buffer)) return host_->all_reduce(buffer, op);
    auto lease = pool_->acquire(buffer.nbytes(), pinned_for(buffer));
    Tensor staged = stage(lease, 0, buffer, /*copy_in=*/true);
    return done(host_->all_reduce(staged, op), {{buffer, staged}}, std::move(lease));
  }

  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op) override {
    if (passes_through(output) && passes_through(input)) return host_->reduce_scatter(output, input, op);
    same_device("reduce_scatter", output, input);
    const int64_t alias = offset_within(input, output);  // output may be this rank's chunk of input
    auto lease = pool_->acquire(align_up(input.nbytes()) + (alias < 0 ? output.nbytes() : 0), pinned_for(input));
    Tensor in = stage(lease, 0, input, true);
    Tensor out = alias < 0 ? stage(lease, align_up(input.nbytes()), output, false) : in.view(alias, output.shape());
    return done(host_->reduce_scatter(out, in, op), {{output, out}}, std::move(lease));
  }

  WorkPtr all_gather(Tensor& output, const Tensor& input) override {
    if (passes_through(output) && passes_through(input)) return host_->all_gather(output, input);
    same_device("all_gather", output, input);
    const int64_t alias = offset_within(output, input);  // input may be this rank's chunk of output
    auto lease = pool_->acquire(align_up(output.nbytes()) + (alias < 0 ? input.nbytes() : 0), pinned_for(output));
    Tensor out = stage(lease, 0, output, /*copy_in=*/alias >= 0);
    Tensor in = alias < 0 ? stage(lease, align_up(output.nbytes()), input, true) : out.view(alias, input.shape());
    return done(host_->all_gather(out, in), {{output, out}}, std::move(lease));
  }

  WorkPtr broadcast(Tensor& buffer, int root) override {
    if (passes_through(buffer)) return host_->broadcast(buffer, root);
    auto lease = pool_->acquire(buffer.nbytes(), pinned_for(buffer));
    Tensor staged = stage(lease, 0, buffer, /*copy_in=*/rank() == root);
    return done(host_->broadcast(staged, root), {{buffer, staged}}, std::move(lease));
  }

  WorkPtr barrier() override { return host_->barrier(); }

 private:
  bool passes_through(const Tensor& t) const { return t.device().is_cpu() && !options_.stage_host_tensors; }
  static bool pinned_for(const Tensor& t) { return !t.device().is_cpu(); }

  static void same_device(const char* op, const Tensor& a, const Tensor& b) {
    ZT_CHECK(a.device() == b.device(), "staged {}: output on {}, input on {}", op, a.device().str(), b.device().str());
  }

  // A host tensor over the leased block at `offset` bytes, shaped like `t`; filled from `t`
  // when the op reads it (a copy from a device waits for the compute stream to get there).
  static Tensor stage(const StagingPool::Lease& lease, size_t offset, const Tensor& t, bool copy_in) {
    ZT_CHECK(offset + t.nbytes() <= lease->bytes, "staging block of {} bytes too small", lease->bytes);
    Tensor staged = Tensor::wrap(lease->data + offset, t.shape(), t.dtype());
    if (copy_in) staged.copy_from(t);
    return staged;
  }

  static WorkPtr done(WorkPtr host_work, std::vector<std::pair<Tensor, Tensor>> copy_back, StagingPool::Lease lease) {
    return std::make_shared<StagedWork>(std::move(host_work), std::move(copy_back), std::move(lease));
  }

  std::unique_ptr<Communicator> host_;
  StagedOptions options_;
  std::shared_ptr<StagingPool> pool_;
};

}  // namespace

std::unique_ptr<Communicator> make_staged_comm(std::unique_ptr<Communicator> host, StagedOptions options) {
  return std::make_unique<StagedComm>(std::move(host), options);
}

}  // namespace zt
