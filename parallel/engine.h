// The ZeRO engine. It owns every unit's flat buffers, decides per stage when parameters are
// gathered and gradients reduced (as UnitHooks around each module), and runs the optimizer
// on this rank's flat fp32 shards.
//
// Each unit's buffer is padded to a multiple of the world size W; rank r owns the range
// [r S, (r+1) S) with S = padded / W. What each stage keeps per rank:
//
//   stage | params          | grads                              | optimizer state
//   0     | full            | full, all-reduced after backward   | full
//   1     | full            | full, reduce-scattered to a shard  | shard
//   2     | full            | shard; full grads live only during a unit's backward
//   3     | shard; gathered around each use, prefetching the next unit (kept from the
//         | forward's last module into backward; not gathered for the embedding's backward)
//
// The stage differences live in four decisions, each in one function: whether params are
// resident (params_resident), whether grads are resident (grads_resident), how gradients are
// reduced (reduce_unit_grads) and how updated params reach every rank (publish_params).
#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "model/transformer.h"
#include "optim/optimizer.h"
#include "parallel/comm.h"

namespace zt {

struct DecayPolicy {
  bool biases = false, norms = false, embeddings = false;  // matrices always decay
  bool decays(ParamKind kind) const;
};

struct EngineOptions {
  DecayPolicy decay;
  double grad_clip = 1.0;  // max global grad norm; 0 = off
  int zero_stage = 0;
  // Stage 0 all-reduces gradients in buckets of consecutive units, launched as soon as the
  // bucket's last unit finishes backward; 0 = one bucket per unit.
  double bucket_mb = 25;
  // Matmul weights' dtype: f32, or bf16 / f16 copies of the fp32 params (mixed precision).
  DType compute_dtype = DType::f32;
  // Gradients on the wire: f32, or bf16 (half the bytes; each rank's fp32 gradients are
  // rounded to bf16, every hop sums in f32 and rounds, and the result is widened back into
  // the fp32 gradients the optimizer reads).
  DType reduce_dtype = DType::f32;
  // Where the flat buffers, optimizer state and activations live (world size 1 on a GPU
  // until collectives run on device memory).
  Device device = Device::cpu();
};

struct StepStats {
  double grad_norm = 0;   // global norm before clipping (of the unscaled gradients)
  float clip_scale = 1;   // factor applied to the gradients
  bool skipped = false;   // the norm was inf/NaN (fp16 overflow): nothing was updated
  double loss_sum = 0;    // what loss_total() accumulated since zero_grads (this rank's)
};

// Bytes of model state this rank holds, by kind (padding included).
struct ModelStateBytes {
  int64_t params = 0, grads = 0, optimizer = 0;
};

class Engine : public UnitHooks {
 public:
  Engine(Transformer& model, Communicator& comm, std::unique_ptr<Optimizer> optimizer,
         const EngineOptions& options);
  ~Engine() override;

  Transformer& model() { return model_; }
  Communicator& comm() { return comm_; }
  Optimizer& optimizer() { return *optimizer_; }
  int stage() const { return options_.zero_stage; }

  // Runs fn with every unit's full parameters bound (gathered at stage 3). With write_back,
  // what fn wrote into them becomes the parameters (init, import); every rank must call it.
  // fn runs on the host: on a GPU it sees host copies (and the device gets what it wrote).
  void with_full_params(const std::function<void()>& fn, bool write_back);

  // Zeroes the gradients and the step's loss total.
  void zero_grads();
  // (1) f64 on the engine's device, for Stream::loss_total: the micro-batches' summed loss.
  // step() reads it back together with the gradient norm, in one copy.
  Tensor loss_total() const { return step_totals_.view(0, {1}); }
  Device device() const { return options_.device; }
  // Call before each micro-batch's forward; gradients are reduced during the backward of the
  // last micro-batch of a step (every micro-batch at stages 2 and 3).
  void begin_micro_batch(bool last);
  // Waits for outstanding reductions, clips by the global norm, updates the shards and
  // publishes the updated parameters.
  // grad_multiplier unscales loss-scaled gradients (1 / loss scale). The global norm is
  // all-reduced, so every rank sees an overflow on any rank and skips the step alike.
  StepStats step(float lr, float grad_multiplier = 1.f);

  ModelStateBytes model_state_bytes() const;

  // Checkpoint access. Unit i's flat range this rank's optimizer owns starts at `begin`
  // (the whole padded buffer at stage 0, else the rank's shard); `tensors` are "params" (the
  // fp32 master weights) and then the optimizer's state over that range, allocated if the
  // optimizer has not stepped yet. Writing into them and then calling publish_loaded_params
  // replaces the training state.
  struct OwnedState {
    int64_t begin = 0;
    std::vector<std::pair<std::string, Tensor>> tensors;
  };
  OwnedState owned_state(size_t unit);
  std::vector<std::string> saved_tensor_names() const;  // "params", then the optimizer's
  void publish_loaded_params();

  void pre_forward(Unit& unit) override;
  void post_forward(Unit& unit, bool backward_next) override;
  void pre_backward(Unit& unit) override;
  void post_backward(Unit& unit, bool last_use) override;

 private:
  struct UnitState;
  // A gradient reduction in flight. When `result` is defined, finishing moves it into `dest`:
  // adding (stages 2-3 reduce every micro-batch; all but a step's first add to the shard),
  // else converting bf16 to f32.
  struct Pending {
    WorkPtr work;
    Tensor result;      // what the op writes, when not `dest` itself
    Tensor dest;        // the fp32 gradients it belongs to
    bool accumulate = false;
    Tensor keep_alive;  // the op's input
  };
  static constexpr size_t kMaxReductionsInFlight = 2;
  bool params_resident() const { return options_.zero_stage < 3; }
  bool grads_resident() const { return options_.zero_stage < 2; }
  // Whether backward writes over the last step's gradients instead of the engine zeroing
  // them (Unit::mark_grads_stale): on the CPU, whose kernels honour GradWrite::overwrite.
  bool overwrites_grads() const { return options_.device.is_cpu(); }
  UnitState& state_of(Unit& unit);
  void gather_params(UnitState& s);        // stage 3: start an all-gather into a full buffer
  void ensure_params(UnitState& s);        // stage 3: wait for (or start and wait) the gather
  void release_params(UnitState& s);
  void refresh_compute(UnitState& s);  // mixed precision: the compute-dtype copy of full params
  void run_on_host(const std::function<void()>& fn, bool write_back);
  void prefetch(size_t pos, bool backward);
  void release_gathered_params();
  void reduce_unit_grads(UnitState& s);
  void finish_oldest_reduction();
  void finish_reductions();
  void publish_params();
  std::vector<DecayRange> shard_ranges(const Unit& unit, int64_t begin, int64_t end) const;

  Transformer& model_;
  Communicator& comm_;
  std::unique_ptr<Optimizer> optimizer_;
  EngineOptions options_;
  std::vector<std::unique_ptr<UnitState>> units_;
  std::vector<ParamShard> shards_;  // what the optimizer updates, one per unit
  std::deque<Pending> pending_;     // gradient reductions in flight, oldest first
  // Stage 0: every unit's full grads are views into one buffer, so a bucket of consecutive
  // units is one contiguous all-reduce.
  struct Bucket {
    size_t first_unit, last_unit;  // model order, inclusive
    Tensor grads;                  // view over the units' grads
    size_t ready = 0;
  };
  Tensor all_grads_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_unit_;
  size_t unit_index(const UnitState& s) const;
  std::vector<Unit*> forward_order_;
  std::vector<bool> backward_reads_params_;  // per position of forward_order_
  size_t forward_pos_ = 0, backward_pos_ = 0;
  bool last_micro_batch_ = true;
  int64_t params_version_ = 0;  // bumped whenever the fp32 params change
  // (2) f64 on the device: [0] the step's loss total, [1] the gradients' sum of squares.
  Tensor step_totals_;
};

}  // namespace zt
