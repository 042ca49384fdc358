// How the engine behaves when a collective fails (a peer died mid-step): the step reports the
// error, and tearing the engine down afterwards must not terminate the process, so a launcher
// sees this rank exit with the error instead of an abort.
#include <gtest/gtest.h>

#include <stdexcept>

#include "model/transformer.h"
#include "optim/optimizer.h"
#include "parallel/comm.h"
#include "parallel/engine.h"

namespace zt {
namespace {

// A world of one whose collectives fail once armed, as Gloo's do when a peer's socket closes.
class FailingComm : public Communicator {
 public:
  void arm() { armed_ = true; }
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string_view backend() const override { return "failing"; }
  WorkPtr all_reduce(Tensor& b, ReduceOp op) override { return armed_ ? failed() : inner_->all_reduce(b, op); }
  WorkPtr reduce_scatter(Tensor& out, const Tensor& in, ReduceOp op) override {
    return armed_ ? failed() : inner_->reduce_scatter(out, in, op);
  }
  WorkPtr all_gather(Tensor& out, const Tensor& in) override { return armed_ ? failed() : inner_->all_gather(out, in); }
  WorkPtr broadcast(Tensor& b, int root) override { return armed_ ? failed() : inner_->broadcast(b, root); }
  WorkPtr barrier() override { return armed_ ? failed() : inner_->barrier(); }

 private:
  struct FailedWork : Work {
    void wait() override { throw std::runtime_error("Connection closed by peer [127.0.0.1]:29500"); }
    bool is_completed() override { return true; }
  };
  static WorkPtr failed() { return std::make_shared<FailedWork>(); }
  std::unique_ptr<Communicator> inner_ = make_single_process_comm();
  bool armed_ = false;
};

ModelSpec tiny_spec() {
  ModelSpec s;
  s.family = Family::gpt2;
  s.n_layer = 3;
  s.d_model = 16;
  s.n_head = 4;
  s.n_kv_head = 4;
  s.d_ff = 32;
  s.vocab_size = 13;
  s.max_seq_len = 8;
  return s;
}

TEST(EngineFaults, AFailedReductionFailsTheStepAndTheEngineStillShutsDown) {
  for (int stage = 0; stage <= 3; ++stage) {
    FailingComm comm;
    Transformer model(tiny_spec());
    EngineOptions options;
    options.zero_stage = stage;
    options.bucket_mb = 0;  // stage 0: one reduction per unit, so several are in flight
    {
      Engine engine(model, comm, make_adamw({}), options);
      engine.zero_grads();
      engine.begin_micro_batch(true);
      comm.arm();
      const std::vector<Unit*> units = model.units();
      // Each unit's backward launches its reduction; once more are in flight than the engine
      // allows, it waits for the oldest, which fails. Those still in flight are waited for by
      // ~Engine, whose failures must not escape it.
      EXPECT_THROW(
          {
            for (auto it = units.rbegin(); it != units.rend(); ++it) {
              engine.pre_backward(**it);
              engine.post_backward(**it, true);
            }
            engine.step(1e-3f);
          },
          std::runtime_error)
          << "stage " << stage;
    }
  }
}

}  // namespace
}  // namespace zt
