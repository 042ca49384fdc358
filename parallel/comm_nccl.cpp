#include "parallel/comm_nccl.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/runtime.h"
#include "core/error.h"
#include "parallel/store.h"

namespace zt {

namespace {

using namespace std::chrono_literals;

constexpr const char* kNcclSoname = "libnccl.so.2";
constexpr int kMinNcclVersion = 21400;  // ncclCommInitRankConfig and non-blocking communicators
static_assert(sizeof(ncclUniqueId) == kNcclIdBytes, "ncclUniqueId is NCCL_UNIQUE_ID_BYTES");

// The NCCL entry points we call, resolved once from the dlopen'ed library (like cuBLASLt in
// core/cuda/gemm.cpp): a build with NCCL still runs where the library is absent.
#define ZT_NCCL_FUNCTIONS(X)                                                                                   \
  X(ncclGetVersion) X(ncclGetUniqueId) X(ncclGetErrorString) X(ncclGetLastError) X(ncclCommInitRankConfig)    \
  X(ncclCommGetAsyncError) X(ncclCommFinalize) X(ncclCommDestroy) X(ncclCommAbort) X(ncclAllReduce)          \
  X(ncclReduceScatter) X(ncclAllGather) X(ncclBroadcast)

struct NcclApi {
#define ZT_NCCL_MEMBER(name) decltype(&::name) name = nullptr;
  ZT_NCCL_FUNCTIONS(ZT_NCCL_MEMBER)
#undef ZT_NCCL_MEMBER
  int version = 0;
};

const NcclApi& nccl() {
  static const NcclApi api = [] {
    void* lib = dlopen(kNcclSoname, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      fail("parallel.backend: nccl cannot load NCCL ({}): {}; put the folder holding it on LD_LIBRARY_PATH, or "
           "use parallel.backend: staged",
           kNcclSoname, dlerror());
    NcclApi a;
#define ZT_NCCL_RESOLVE(name)                                                        \
  a.name = reinterpret_cast<decltype(a.name)>(dlsym(lib, #name));                    \
  if (!a.name) fail("{} has no symbol {} (NCCL 2.14 or newer is needed)", kNcclSoname, #name);
    ZT_NCCL_FUNCTIONS(ZT_NCCL_RESOLVE)
#undef ZT_NCCL_RESOLVE
    if (a.ncclGetVersion(&a.version) != ncclSuccess || a.version < kMinNcclVersion)
      fail("{} is version code {}; zerotrain needs NCCL 2.14 or newer", kNcclSoname, a.version);
    return a;
  }();
  return api;
}

// ncclInProgress is not an error on a non-blocking communicator: the caller polls.
void check(ncclResult_t rc, const char* call, int rank, ncclComm_t comm = nullptr) {
  if (rc == ncclSuccess || rc == ncclInProgress) return;
  const char* detail = nccl().ncclGetLastError(comm);
  fail("NCCL: rank {}: {} failed: {} ({})", rank, call, nccl().ncclGetErrorString(rc), detail ? detail : "");
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
  }
  fail("NCCL: no type for {}", dtype_name(t));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::avg: return ncclAvg;
    case ReduceOp::max: return ncclMax;
  }
  fail("NCCL: unknown reduce op");
}

cudaEvent_t new_event() {
  cudaEvent_t e = nullptr;
  ZT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

// Done when the op's event has fired on the communication stream. wait() orders the compute
// stream after it; the tensors stay referenced until the Work goes, so their memory is not
// handed to anything else while NCCL may still touch it.
class NcclWork : public Work {
 public:
  NcclWork(cudaEvent_t op_done, Device device, std::vector<Tensor> operands)
      : op_done_(op_done), device_(device), operands_(std::move(operands)) {}
  ~NcclWork() override { (void)cudaEventDestroy(op_done_); }

  void wait() override {
    cuda::set_device(device_);
    ZT_CUDA_CHECK(cudaStreamWaitEvent(cuda::compute_stream(), op_done_, 0));
  }
  bool is_completed() override {
    const cudaError_t st = cudaEventQuery(op_done_);
    if (st == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    ZT_CUDA_CHECK(st);
    return true;
  }

 private:
  cudaEvent_t op_done_;
  Device device_;
  std::vector<Tensor> operands_;
};

class NcclComm : public Communicator {
 public:
  NcclComm(std::unique_ptr<Communicator> host, const RankInfo& where, std::chrono::milliseconds timeout)
      : host_(std::move(host)), rank_(host_->rank()), world_(host_->world_size()), timeout_(timeout) {
    // Every rank checks its library and GPU, then all learn every verdict: one bad rank stops
    // all of them with its reason instead of leaving the others waiting in NCCL.
    std::string problem;
    try {
      nccl();
    } catch (const Error& e) {
      problem = e.what();
    }
    const DeviceChoice choice = device_for_local_rank(where.local_rank, cuda::device_count());
    if (problem.empty()) problem = choice.problem;
    check_in(*host_, problem);
    device_ = choice.device;
    cuda::set_device(device_);
    ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));

    const NcclIdBytes id_bytes = share_unique_id(*host_, nccl_unique_id);
    ncclUniqueId id;
    std::memcpy(&id, id_bytes.data(), sizeof id);

    // Under zt launch the store records who reached ncclCommInitRankConfig, for the timeout.
    std::unique_ptr<StoreClient> store;
    if (where.launcher == "torchrun" && !where.master_addr.empty()) {
      try {
        store = std::make_unique<StoreClient>(where.master_addr, where.master_port, 10s);
      } catch (const std::exception&) {  // the message then says the store could not tell
      }
    }
    const char* attempt = std::getenv("ZT_RESTART_COUNT");
    ArrivalBoard arrivals(store.get(), std::string("zt/") + (attempt ? attempt : "0") + "/nccl_init", world_);
    arrivals.arrive(rank_);

    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // returns at once; we poll, so a missing rank times out instead of hanging
    check(nccl().ncclCommInitRankConfig(&comm_, world_, id, rank_, &config), "ncclCommInitRankConfig", rank_);
    await_ready("ncclCommInitRankConfig", &arrivals);
    // The bootstrap's collectives (check-in, id broadcast) are set-up, not the caller's
    // traffic: the counters start at zero, as they do for every other backend.
    host_->reset_stats();
  }

  ~NcclComm() override {
    if (comm_) {
      (void)cudaSetDevice(device_.index);
      (void)cudaStreamSynchronize(comm_stream_);
      // Finalize flushes NCCL's pending work; when it fails or hangs (a peer died), abort.
      const ncclResult_t rc = nccl().ncclCommFinalize(comm_);
      const bool finalized = rc == ncclSuccess || (rc == ncclInProgress && poll_until_ready());
      if (finalized)
        (void)nccl().ncclCommDestroy(comm_);
      else
        (void)nccl().ncclCommAbort(comm_);
    }
    if (comm_stream_) (void)cudaStreamDestroy(comm_stream_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string_view backend() const override { return "nccl"; }
  CommStats stats() const override {
    CommStats s = Communicator::stats();
    s += host_->stats();
    return s;
  }
  void reset_stats() override {
    Communicator::reset_stats();
    host_->reset_stats();
  }

  WorkPtr all_reduce(Tensor& buffer, ReduceOp op) override {
    if (buffer.device().is_cpu()) return host_->all_reduce(buffer, op);
    on_my_device("all_reduce", buffer);
    return enqueue(CommOp::all_reduce, ring_bytes_sent(CommOp::all_reduce, buffer.nbytes(), world_), {buffer},
                   "ncclAllReduce", [&](cudaStream_t s) {
                     return nccl().ncclAllReduce(buffer.raw(), buffer.raw(), static_cast<size_t>(buffer.numel()),
                                                 nccl_type(buffer.dtype()), nccl_op(op), comm_, s);
                   });
  }

  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op) override {
    if (output.device().is_cpu() && input.device().is_cpu()) return host_->reduce_scatter(output, input, op);
    on_my_device("reduce_scatter", output);
    on_my_device("reduce_scatter", input);
    ZT_CHECK(input.numel() == output.numel() * world_ && input.dtype() == output.dtype(),
             "reduce_scatter: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    check_alias("reduce_scatter", input, output);
    return enqueue(CommOp::reduce_scatter, ring_bytes_sent(CommOp::reduce_scatter, input.nbytes(), world_),
                   {output, input}, "ncclReduceScatter", [&](cudaStream_t s) {
                     return nccl().ncclReduceScatter(input.raw(), output.raw(), static_cast<size_t>(output.numel()),
                                                     nccl_type(input.dtype()), nccl_op(op), comm_, s);
                   });
  }

  WorkPtr all_gather(Tensor& output, const Tensor& input) override {
    if (output.device().is_cpu() && input.device().is_cpu()) return host_->all_gather(output, input);
    on_my_device("all_gather", output);
    on_my_device("all_gather", input);
    ZT_CHECK(output.numel() == input.numel() * world_ && input.dtype() == output.dtype(),
             "all_gather: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    check_alias("all_gather", output, input);
    return enqueue(CommOp::all_gather, ring_bytes_sent(CommOp::all_gather, output.nbytes(), world_),
                   {output, input}, "ncclAllGather", [&](cudaStream_t s) {
                     return nccl().ncclAllGather(input.raw(), output.raw(), static_cast<size_t>(input.numel()),
                                                 nccl_type(input.dtype()), comm_, s);
                   });
  }

  WorkPtr broadcast(Tensor& buffer, int root) override {
    if (buffer.device().is_cpu()) return host_->broadcast(buffer, root);
    on_my_device("broadcast", buffer);
    return enqueue(CommOp::broadcast, ring_bytes_sent(CommOp::broadcast, buffer.nbytes(), world_, rank_ == root),
                   {buffer}, "ncclBroadcast", [&](cudaStream_t s) {
                     return nccl().ncclBroadcast(buffer.raw(), buffer.raw(), static_cast<size_t>(buffer.numel()),
                                                 nccl_type(buffer.dtype()), root, comm_, s);
                   });
  }

  WorkPtr barrier() override { return host_->barrier(); }

 private:
  void on_my_device(const char* op, const Tensor& t) const {
    ZT_CHECK(t.device() == device_, "nccl {}: rank {} drives {} but the tensor is on {}", op, rank_, device_.str(),
             t.device().str());
  }

  // NCCL works in place only when the rank's chunk of the full buffer is the other operand;
  // any other overlap would be read while being written.
  void check_alias(const char* op, const Tensor& full, const Tensor& chunk) const {
    const char* f = static_cast<const char*>(full.raw());
    const char* c = static_cast<const char*>(chunk.raw());
    const bool overlaps = c < f + full.nbytes() && f < c + chunk.nbytes();
    ZT_CHECK(!overlaps || c == f + static_cast<size_t>(rank_) * chunk.nbytes(),
             "nccl {}: the chunk overlaps the full buffer away from rank {}'s place", op, rank_);
  }

  // The op runs on the communication stream once the compute stream has produced its inputs;
  // its Work carries the event that marks the end.
  template <class Launch>
  WorkPtr enqueue(CommOp op, int64_t bytes_sent, std::vector<Tensor> operands, const char* call, Launch&& launch) {
    cuda::set_device(device_);
    raise_async_error();  // an earlier op that failed on the device fails the next call
    cudaEvent_t inputs_ready = new_event();
    ZT_CUDA_CHECK(cudaEventRecord(inputs_ready, cuda::compute_stream()));
    ZT_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, inputs_ready, 0));
    ZT_CUDA_CHECK(cudaEventDestroy(inputs_ready));  // released once the wait is satisfied
    const ncclResult_t rc = launch(comm_stream_);
    check(rc, call, rank_, comm_);
    if (rc == ncclInProgress) await_ready(call, nullptr);  // non-blocking: enqueued once ready
    cudaEvent_t op_done = new_event();
    ZT_CUDA_CHECK(cudaEventRecord(op_done, comm_stream_));
    // Busy time would need timing events and a host wait; the bytes are known now.
    record(op, bytes_sent, 0);
    return std::make_shared<NcclWork>(op_done, device_, std::move(operands));
  }

  void raise_async_error() {
    ncclResult_t state = ncclSuccess;
    check(nccl().ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError", rank_, comm_);
    if (state != ncclSuccess && state != ncclInProgress) check(state, "an earlier collective", rank_, comm_);
  }

  // Polls the non-blocking communicator until its last call has finished, failing after the
  // timeout (then `arrivals`, when given, names the ranks that never came).
  void await_ready(const char* call, ArrivalBoard* arrivals) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      ncclResult_t state = ncclInProgress;
      check(nccl().ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError", rank_, comm_);
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        const std::string detail = nccl().ncclGetLastError(comm_) ? nccl().ncclGetLastError(comm_) : "";
        abort_comm();
        fail("NCCL: rank {}: {} failed: {} ({})", rank_, call, nccl().ncclGetErrorString(state), detail);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        const std::string who = arrivals ? arrivals->describe_missing() : "a peer is stuck or dead";
        abort_comm();
        fail("NCCL: rank {}: {} did not complete within parallel.timeout_s = {} s; {}", rank_, call,
             timeout_.count() / 1000.0, who);
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  // For the destructor: true when the communicator became ready in time. At most 30 s: an
  // exception unwinding past a dead peer should not hang for the whole collective timeout.
  bool poll_until_ready() noexcept {
    const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout_, 30s);
    for (;;) {
      ncclResult_t state = ncclInProgress;
      if (nccl().ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return false;
      if (state == ncclSuccess) return true;
      if (state != ncclInProgress || std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
  }

  void abort_comm() noexcept {
    if (comm_) (void)nccl().ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  std::unique_ptr<Communicator> host_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
  Device device_;
  cudaStream_t comm_stream_ = nullptr;  // orders NCCL kernels; waits on the compute stream per op
  ncclComm_t comm_ = nullptr;
};

}  // namespace

NcclIdBytes nccl_unique_id() {
  ncclUniqueId id;
  check(nccl().ncclGetUniqueId(&id), "ncclGetUniqueId", 0);
  NcclIdBytes bytes;
  std::memcpy(bytes.data(), &id, kNcclIdBytes);
  return bytes;
}

std::string nccl_version() {
  const int v = nccl().version;  // 2.9 and later: major * 10000 + minor * 100 + patch
  return fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

std::unique_ptr<Communicator> make_nccl_comm(std::unique_ptr<Communicator> host, const RankInfo& where,
                                             std::chrono::milliseconds timeout) {
  return std::make_unique<NcclComm>(std::move(host), where, timeout);
}

}  // namespace zt
