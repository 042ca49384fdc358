#include "parallel/comm_gloo.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/types.h>
#include <fmt/ranges.h>

#include <gloo/common/error.h>

#include <chrono>
#include <thread>
#include <vector>
#include <cstdlib>
#include <cstring>

#include "core/cpu/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "parallel/comm_thread.h"
#include "parallel/ring_collectives.h"
#include "parallel/shm_ring.h"
#include "parallel/store.h"

namespace zt {

namespace {

using namespace std::chrono_literals;

// Gloo's rendezvous interface over our TCP store client.
class GlooStore : public gloo::rendezvous::Store {
 public:
  explicit GlooStore(StoreClient& client) : client_(client) {}
  void set(const std::string& key, const std::vector<char>& data) override { client_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return client_.get(key); }
  void wait(const std::vector<std::string>& keys) override { client_.wait(keys); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    client_.wait(keys, timeout);
  }

 private:
  StoreClient& client_;
};

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// Slots of our ring reduce-scatter's messages: a prefix none of Gloo's collectives uses.
constexpr uint8_t kRingSlotPrefix = 0x7a;

template <typename T>
ReduceFn reduce_fn(ReduceOp op) {
  return op == ReduceOp::max ? ReduceFn(&gloo::max<T>) : ReduceFn(&gloo::sum<T>);
}

// ZT_GLOO_SHM: whether ranks on one host pass our ring's transfers through shared memory
// (auto, the default) or over Gloo's TCP (off).
bool shm_wanted() {
  const char* v = std::getenv("ZT_GLOO_SHM");
  if (!v || std::string(v) == "auto" || std::string(v) == "on") return true;
  if (std::string(v) == "off") return false;
  fail("ZT_GLOO_SHM={}: expected auto, on or off", v);
}

void sum_bf16_fn(void* c, const void* a, const void* b, size_t n) {
  cpu::sum_bf16(static_cast<uint16_t*>(c), static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b),
                static_cast<int64_t>(n));
}

class GlooComm : public ThreadedCommunicator {
 public:
  GlooComm(const RankInfo& where, std::chrono::milliseconds timeout)
      : rank_(where.rank), world_(where.world_size), timeout_(timeout) {
    store_ = std::make_unique<StoreClient>(where.master_addr, where.master_port, 60000ms);
    GlooStore adapter(*store_);
    // Keys are per launch attempt, so a restarted group never reads the last one's addresses.
    const char* attempt = std::getenv("ZT_RESTART_COUNT");
    prefix_ = std::string("zt/") + (attempt ? attempt : "0");
    gloo::rendezvous::PrefixStore prefixed(prefix_, adapter);
    gloo::transport::tcp::attr attr;
    attr.hostname = where.master_addr == "127.0.0.1" || where.master_addr == "localhost" ? "127.0.0.1" : "";
    device_ = gloo::transport::tcp::CreateDevice(attr);
    context_ = std::make_shared<gloo::rendezvous::Context>(rank_, world_);
    context_->setTimeout(timeout_);
    try {
      context_->connectFullMesh(prefixed, device_);
    } catch (const std::exception& e) {
      fail("gloo: rank {} could not connect to the other {} ranks (store {}:{}): {}", rank_, world_ - 1,
           where.master_addr, where.master_port, e.what());
    }
    // Every rank on this host: our ring's neighbours can meet in shared memory.
    if (world_ > 1 && where.local_world_size == world_ && shm_wanted()) {
      std::string why;
      shm_ = ShmRingLink::connect(*store_, prefix_, rank_, world_, &why);
      if (!shm_) log::warn_once("gloo: collectives go over TCP, not shared memory: {}", why);
    }
  }
  ~GlooComm() override { stop_thread(); }  // before the context goes away

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string_view backend() const override { return "gloo"; }

  WorkPtr all_reduce(Tensor& buffer, ReduceOp op) override {
    return submit(CommOp::all_reduce, ring_bytes_sent(CommOp::all_reduce, buffer.nbytes(), world_),
                  [=, this]() mutable { allreduce_in_place(buffer, op); });
  }

  // Gloo's options API has no reduce-scatter: our ring over its point-to-point transfers
  // (all-reducing a copy and keeping this rank's chunk would move twice the bytes).
  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op) override {
    ZT_CHECK(input.numel() == output.numel() * world_ && input.dtype() == output.dtype(),
             "reduce_scatter: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    return submit(CommOp::reduce_scatter, ring_bytes_sent(CommOp::reduce_scatter, input.nbytes(), world_),
                  [=, this]() mutable {
                    run("reduce_scatter", [&](uint32_t tag) {
                      ring_reduce_scatter(output, input, op, rank_, world_, transfers(tag));
                    });
                  });
  }

  WorkPtr all_gather(Tensor& output, const Tensor& input) override {
    ZT_CHECK(output.numel() == input.numel() * world_ && input.dtype() == output.dtype(),
             "all_gather: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    return submit(CommOp::all_gather, ring_bytes_sent(CommOp::all_gather, output.nbytes(), world_),
                  [=, this]() mutable {
                    if (world_ == 1) {
                      if (output.raw() != input.raw()) output.copy_from(input);
                      return;
                    }
                    // Gloo's input must not alias its output, ours may be its own chunk there
                    // (stages 1-2 publish updated params in place; stage 3 gathers from a
                    // separate shard): copy it when neither holds.
                    const char* in_begin = static_cast<const char*>(input.raw());
                    const char* out_begin = static_cast<const char*>(output.raw());
                    const bool aliases = in_begin < out_begin + output.nbytes() && out_begin < in_begin + input.nbytes();
                    const bool own_chunk = in_begin == out_begin + rank_ * input.nbytes();
                    if (shm_) {
                      const Tensor in = aliases && !own_chunk ? input.clone(MemTag::comm) : input;
                      run("all_gather", [&](uint32_t tag) { ring_all_gather(output, in, rank_, world_, transfers(tag)); });
                      return;
                    }
                    Tensor in = aliases ? input.clone(MemTag::comm) : input;
                    gloo::AllgatherOptions opts(context_);
                    opts.setInput(static_cast<char*>(in.raw()), in.nbytes());
                    opts.setOutput(static_cast<char*>(output.raw()), output.nbytes());
                    run("all_gather", [&](uint32_t tag) {
                      opts.setTag(tag);
                      gloo::allgather(opts);
                    });
                  });
  }

  WorkPtr broadcast(Tensor& buffer, int root) override {
    return submit(CommOp::broadcast, ring_bytes_sent(CommOp::broadcast, buffer.nbytes(), world_, rank_ == root),
                  [=, this]() mutable {
                    if (world_ == 1) return;
                    gloo::BroadcastOptions opts(context_);
                    opts.setOutput(static_cast<char*>(buffer.raw()), buffer.nbytes());
                    opts.setRoot(root);
                    run("broadcast", [&](uint32_t tag) {
                      opts.setTag(tag);
                      gloo::broadcast(opts);
                    });
                  });
  }

  WorkPtr barrier() override {
    return submit(CommOp::barrier, 0, [this] {
      if (world_ == 1) return;
      gloo::BarrierOptions opts(context_);
      run("barrier", [&](uint32_t tag) {
        opts.setTag(tag);
        gloo::barrier(opts);
      });
    });
  }

 private:
  void allreduce_in_place(Tensor& t, ReduceOp op) {
    if (shm_) {  // our ring, both halves through shared memory
      run("all_reduce", [&](uint32_t tag) { ring_all_reduce(t, op, rank_, world_, transfers(tag)); });
      return;
    }
    if (world_ > 1) {
      gloo::AllreduceOptions opts(context_);
      switch (t.dtype()) {
        case DType::f32:
          opts.setOutput(t.data<float>(), t.numel());
          opts.setReduceFunction(reduce_fn<float>(op));
          break;
        case DType::f64:
          opts.setOutput(t.data<double>(), t.numel());
          opts.setReduceFunction(reduce_fn<double>(op));
          break;
        case DType::i32:
          opts.setOutput(t.data<int32_t>(), t.numel());
          opts.setReduceFunction(reduce_fn<int32_t>(op));
          break;
        case DType::bf16:  // as 16-bit words, summed in f32 and rounded back
          ZT_CHECK(op != ReduceOp::max, "gloo: max of bf16 is not supported");
          opts.setOutput(t.data<uint16_t>(), t.numel());
          opts.setReduceFunction(ReduceFn(&sum_bf16_fn));
          break;
        default:
          ZT_CHECK(false, "gloo reductions need f32, f64 or i32 (or bf16 for sum and avg), got {}",
                   dtype_name(t.dtype()));
      }
      run("all_reduce", [&](uint32_t tag) {
        opts.setTag(tag);
        gloo::allreduce(opts);
      });
    }
    if (op == ReduceOp::avg) divide_by_world(t, world_);
  }

  // Our ring's transfers for the collective under `tag`: through shared memory when the ranks
  // share this host, else Gloo's point-to-point.
  SendRecv transfers(uint32_t tag) {
    if (shm_)
      return [this](const void* send, int, int, int64_t bytes, void*, const Consume& consume) {
        shm_->sendrecv(send, bytes, ShmRingLink::Clock::now() + timeout_, consume);
      };
    return [this, tag](const void* send, int to, int from, int64_t bytes, void* scratch, const Consume& consume) {
      sendrecv(tag, send, to, scratch, from, bytes);
      consume(scratch);
    };
  }

  // One transfer of our ring: `bytes` to rank `to` while as many arrive from rank `from`,
  // under the collective's tag (its messages between two ranks arrive in order).
  void sendrecv(uint32_t tag, const void* send, int to, void* recv, int from, int64_t bytes) {
    const uint64_t slot = gloo::Slot::build(kRingSlotPrefix, tag);
    auto out = context_->createUnboundBuffer(const_cast<void*>(send), static_cast<size_t>(bytes));
    auto in = context_->createUnboundBuffer(recv, static_cast<size_t>(bytes));
    in->recv(from, slot);
    out->send(to, slot);
    in->waitRecv(timeout_);
    out->waitSend(timeout_);
  }

  // Runs one Gloo collective under the next tag (fn sets it). When it times out, every rank
  // that waited checks in through the store under that tag; the ranks that never check in
  // are the ones the collective waited for.
  template <class Fn>
  void run(const char* op, Fn&& fn) {
    const uint32_t tag = tag_++;
    try {
      fn(tag);
    } catch (const gloo::IoException& e) {
      if (std::string(e.what()).find("Timed out") == std::string::npos) throw;
      timed_out(op, tag);
    } catch (const ShmTimeout&) {
      timed_out(op, tag);
    }
  }

  [[noreturn]] void timed_out(const char* op, uint32_t tag) {
    fail("gloo: rank {}: {} #{} did not complete within parallel.timeout_s = {} s; {}", rank_, op, tag,
         timeout_.count() / 1000.0, missing_ranks(tag));
  }

  std::string missing_ranks(uint32_t tag) {
    try {
      const std::string key = fmt::format("{}/timed_out/{}/", prefix_, tag);
      store_->add(key + std::to_string(rank_), 1);
      std::vector<int> missing;
      const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout_, 5000ms);
      do {  // the ranks that also waited time out about together: give them a moment
        std::this_thread::sleep_for(200ms);
        missing.clear();
        for (int r = 0; r < world_; ++r)
          if (store_->add(key + std::to_string(r), 0) == 0) missing.push_back(r);
      } while (!missing.empty() && std::chrono::steady_clock::now() < deadline);
      if (missing.empty()) return "every rank reached it (a slow network?)";
      return fmt::format("rank(s) {} never reached it (stuck or dead)", fmt::join(missing, ", "));
    } catch (const std::exception& e) {
      return fmt::format("the store could not say which rank is missing ({})", e.what());
    }
  }

  int rank_, world_;
  std::chrono::milliseconds timeout_;
  std::string prefix_;  // this launch attempt's store keys
  uint32_t tag_ = 0;
  std::unique_ptr<StoreClient> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  std::unique_ptr<ShmRingLink> shm_;  // ranks all on this host: the ring's transfers
};

}  // namespace

std::unique_ptr<Communicator> make_gloo_comm(const RankInfo& where, std::chrono::milliseconds timeout) {
  return std::make_unique<GlooComm>(where, timeout);
}

}  // namespace zt
