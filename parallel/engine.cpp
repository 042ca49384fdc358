#include "parallel/engine.h"

#include <algorithm>
#include <cmath>

#include "core/kernels.h"
#include "core/log.h"
#include "optim/clip.h"

namespace zt {

bool DecayPolicy::decays(ParamKind kind) const {
  switch (kind) {
    case ParamKind::matrix: return true;
    case ParamKind::bias: return biases;
    case ParamKind::norm: return norms;
    case ParamKind::embedding: return embeddings;
  }
  return true;
}

struct Engine::UnitState {
  Unit* unit = nullptr;
  int64_t padded = 0, shard = 0;  // elements
  Tensor full_params;             // resident at stages 0-2; while gathered at stage 3
  WorkPtr gather;                 // stage 3 all-gather in flight
  Tensor shard_params;            // the optimizer's parameters: full, a view or an owned shard
  Tensor full_grads;              // resident at stages 0-1; during backward at stages 2-3
  Tensor shard_grads;             // the optimizer's gradients
  // Stages 1-3 on the CPU: shard_grads holds the last step's values. The step's first
  // reduction writes over it instead of adding to zeros; step() zeroes it if none came.
  bool shard_stale = false;
  Tensor compute;                 // mixed precision: full params in the compute dtype
  int64_t compute_version = -1;   // params_version_ it was converted from
};



Engine::Engine(Transformer& model, Communicator& comm, std::unique_ptr<Optimizer> optimizer,
               const EngineOptions& options)
    : model_(model), comm_(comm), optimizer_(std::move(optimizer)), options_(options) {
  ZT_CHECK(options.zero_stage >= 0 && options.zero_stage <= 3, "zero stage {}", options.zero_stage);
  ZT_CHECK(options.reduce_dtype == DType::f32 || options.reduce_dtype == DType::bf16, "gradient reduction in {}",
           dtype_name(options.reduce_dtype));
  const int64_t W = comm.world_size(), r = comm.rank();
  const int stage = options.zero_stage;
  const Device dev = options.device;
  // With compute copies bound, the model stores its saved activations in the compute dtype.
  model_.set_activation_dtype(options.compute_dtype);
  model_.set_device(dev);
  step_totals_ = Tensor::zeros({2}, DType::f64, MemTag::other, dev);
  if (stage == 0) {  // one buffer for all grads, so buckets are contiguous
    int64_t total = 0;
    for (Unit* u : model_.units()) total += (u->numel() + W - 1) / W * W;
    all_grads_ = Tensor::zeros({total}, DType::f32, MemTag::grads, dev);
  }
  int64_t grads_offset = 0;
  for (Unit* u : model_.units()) {
    auto s = std::make_unique<UnitState>();
    s->unit = u;
    s->padded = (u->numel() + W - 1) / W * W;
    s->shard = s->padded / W;
    const int64_t begin = stage == 0 ? 0 : r * s->shard, len = stage == 0 ? s->padded : s->shard;
    if (params_resident()) {
      s->full_params = Tensor::zeros({s->padded}, DType::f32, MemTag::params, dev);
      u->bind_params(s->full_params);
      s->shard_params = s->full_params.view(begin, {len});
    } else {
      s->shard_params = Tensor::zeros({s->shard}, DType::f32, MemTag::params, dev);
    }
    if (grads_resident()) {
      s->full_grads = stage == 0 ? all_grads_.view(grads_offset, {s->padded})
                                 : Tensor::zeros({s->padded}, DType::f32, MemTag::grads, dev);
      grads_offset += s->padded;
      u->bind_grads(s->full_grads);
    }
    s->shard_grads = stage == 0 ? s->full_grads : Tensor::zeros({s->shard}, DType::f32, MemTag::grads, dev);
    // Stage 0 updates every parameter here, so the step itself can refresh the compute copy.
    if (stage == 0 && options.compute_dtype != DType::f32)
      s->compute = Tensor::empty({s->padded}, options.compute_dtype, MemTag::params, dev);
    shards_.push_back({s->shard_params, s->shard_grads, shard_ranges(*u, begin, begin + len), s->compute});
    units_.push_back(std::move(s));
  }
  forward_order_ = model_.forward_order();
  backward_reads_params_ = model_.backward_reads_params();
  if (stage == 0) {
    // Buckets close from the last unit backwards, the order backward finishes them.
    const int64_t bucket_bytes = static_cast<int64_t>(options.bucket_mb * 1048576.0);
    bucket_of_unit_.resize(units_.size());
    size_t last = units_.size() - 1;
    int64_t bytes = 0;
    for (size_t i = units_.size(); i-- > 0;) {
      bytes += units_[i]->padded * 4;
      if (bytes >= bucket_bytes || i == 0) {
        const int64_t begin =
            (static_cast<char*>(units_[i]->full_grads.raw()) - static_cast<char*>(all_grads_.raw())) / 4;
        int64_t len = 0;
        for (size_t k = i; k <= last; ++k) len += units_[k]->padded;
        buckets_.push_back({i, last, all_grads_.view(begin, {len}), 0});
        for (size_t k = i; k <= last; ++k) bucket_of_unit_[k] = buckets_.size() - 1;
        bytes = 0;
        last = i - 1;
      }
    }
  }
}

size_t Engine::unit_index(const UnitState& s) const {
  for (size_t i = 0; i < units_.size(); ++i)
    if (units_[i].get() == &s) return i;
  ZT_CHECK(false, "unknown unit");
  return 0;
}

// In-flight collectives still use our buffers, so wait for each; but one that failed (a peer
// died) has already failed the step that unwound through here, and rethrowing it from a
// destructor would terminate the process instead of letting it exit with that error.
Engine::~Engine() {
  auto settle = [](Work& work) {
    try {
      work.wait();
    } catch (const std::exception& e) {
      log::debug("a collective in flight at shutdown failed: {}", e.what());
    }
  };
  for (auto& p : pending_) settle(*p.work);
  for (auto& s : units_)
    if (s->gather) settle(*s->gather);
}

// Weight-decay ranges of the flat range [begin, end) of a unit; padding never decays.
std::vector<DecayRange> Engine::shard_ranges(const Unit& unit, int64_t begin, int64_t end) const {
  std::vector<DecayRange> out;
  int64_t at = begin;
  for (const ParamSpec& p : unit.params()) {
    const int64_t lo = std::max(begin, p.offset), hi = std::min(end, p.offset + p.numel());
    if (lo >= hi) continue;
    out.push_back({lo - begin, hi - begin, options_.decay.decays(p.kind)});
    at = hi;
  }
  if (at < end) out.push_back({at - begin, end - begin, false});
  if (out.empty()) out.push_back({0, end - begin, false});
  return out;
}

Engine::UnitState& Engine::state_of(Unit& unit) {
  for (auto& s : units_)
    if (s->unit == &unit) return *s;
  ZT_CHECK(false, "unit {} is not managed by this engine", unit.name());
  throw;  // unreachable
}

void Engine::with_full_params(const std::function<void()>& fn, bool write_back) {
  if (write_back) ++params_version_;
  if (params_resident()) {
    run_on_host(fn, write_back);
    return;
  }
  for (auto& s : units_) {
    if (write_back) {
      s->full_params = Tensor::zeros({s->padded}, DType::f32, MemTag::params, options_.device);
      s->unit->bind_params(s->full_params);
    } else {
      gather_params(*s);
    }
  }
  for (auto& s : units_) ensure_params(*s);
  run_on_host(fn, write_back);
  const int64_t r = comm_.rank();
  for (auto& s : units_) {
    if (write_back) s->shard_params.copy_from(s->full_params.view(r * s->shard, {s->shard}));
    release_params(*s);
  }
}

// Init, import and export read and write parameters with host code: on a GPU they see host
// copies of the full params, and the device gets back what they wrote.
void Engine::run_on_host(const std::function<void()>& fn, bool write_back) {
  if (options_.device.is_cpu()) return fn();
  std::vector<Tensor> host;
  for (auto& s : units_) {
    host.push_back(s->full_params.to(Device::cpu(), MemTag::params));
    s->unit->bind_params(host.back());
  }
  fn();
  for (size_t i = 0; i < units_.size(); ++i) {
    UnitState& s = *units_[i];
    if (write_back) s.full_params.copy_from(host[i]);
    s.unit->bind_params(s.full_params);
  }
}

// ---- stage 3 parameter gathering ---------------------------------------------------------

void Engine::gather_params(UnitState& s) {
  if (s.full_params.defined()) return;
  s.full_params = Tensor::empty({s.padded}, DType::f32, MemTag::params, options_.device);
  s.gather = comm_.all_gather(s.full_params, s.shard_params);
}

void Engine::ensure_params(UnitState& s) {
  gather_params(s);
  if (s.gather) {
    s.gather->wait();
    s.gather.reset();
  }
  s.unit->bind_params(s.full_params);
  refresh_compute(s);
}

void Engine::release_params(UnitState& s) {
  if (s.gather) {
    s.gather->wait();
    s.gather.reset();
  }
  s.unit->bind_params(Tensor());
  s.full_params = Tensor();
  s.unit->bind_compute(Tensor());
  s.compute = Tensor();
}

// Starts gathering the unit of the module at `pos` of forward (or backward) order, unless
// that module's backward reads no parameters.
void Engine::prefetch(size_t pos, bool backward) {
  const size_t n = forward_order_.size();
  if (pos >= n) return;
  const size_t chain_pos = backward ? n - 1 - pos : pos;
  if (!backward || backward_reads_params_[chain_pos]) gather_params(state_of(*forward_order_[chain_pos]));
}

// Stage 3: a unit gathered outside a micro-batch's forward and backward would hold parameters
// from before the update.
void Engine::release_gathered_params() {
  if (params_resident()) return;
  for (auto& s : units_)
    if (s->full_params.defined()) release_params(*s);
}

// ---- hooks -------------------------------------------------------------------------------

void Engine::begin_micro_batch(bool last) {
  finish_reductions();
  for (Bucket& b : buckets_) b.ready = 0;
  last_micro_batch_ = last;
  forward_pos_ = backward_pos_ = 0;
}

void Engine::pre_forward(Unit& unit) {
  const size_t pos = forward_pos_++;
  if (params_resident()) return refresh_compute(state_of(unit));
  ensure_params(state_of(unit));
  prefetch(pos + 1, /*backward=*/false);
}

// A unit whose next module is its own stays gathered: the final norm's, for an untied head;
// and the last module's when backward follows, which starts with it (FSDP likewise keeps the
// root's parameters from forward to backward). Releasing it there cost an all-gather that
// nothing could overlap: for a tied GPT-2 the embedding table, a third of gpt2-124m.
void Engine::post_forward(Unit& unit, bool backward_next) {
  const bool used_next =
      backward_next || (forward_pos_ < forward_order_.size() && forward_order_[forward_pos_] == &unit);
  if (!params_resident() && !used_next) release_params(state_of(unit));
}

void Engine::pre_backward(Unit& unit) {
  const size_t pos = backward_pos_++;
  UnitState& s = state_of(unit);
  if (params_resident()) refresh_compute(s);
  if (!params_resident()) {
    if (backward_reads_params_[forward_order_.size() - 1 - pos]) ensure_params(s);
    prefetch(pos + 1, /*backward=*/true);
  }
  if (!grads_resident() && !s.full_grads.defined()) {
    // On the CPU backward writes over stale gradients (zero_grads): only the padding, which
    // the reduction reads and no unit writes, needs zeros.
    s.full_grads = Tensor::empty({s.padded}, DType::f32, MemTag::grads, options_.device);
    unit.bind_grads(s.full_grads);
    if (overwrites_grads()) {
      unit.mark_grads_stale();
      s.full_grads.view(unit.numel(), {s.padded - unit.numel()}).zero_();
    } else {
      s.full_grads.zero_();
    }
  }
}

void Engine::post_backward(Unit& unit, bool last_use) {
  UnitState& s = state_of(unit);
  const size_t n = forward_order_.size();
  const bool used_next = backward_pos_ < n && forward_order_[n - 1 - backward_pos_] == &unit &&
                         backward_reads_params_[n - 1 - backward_pos_];
  if (!params_resident() && !used_next) release_params(s);
  if (last_use) unit.zero_stale_grads();  // what this backward did not write (zero_grads)
  if (last_use && (last_micro_batch_ || !grads_resident())) reduce_unit_grads(s);
}

// ---- gradient reduction --------------------------------------------------------------------

// Sums gradients over ranks, launched as soon as the unit's backward is done so it overlaps
// the backward of the units before it. Stage 0: all-reduce in place. Stage 1: reduce-scatter
// into the grad shard once per step. Stages 2-3: reduce-scatter every micro-batch, the step's
// first into the shard itself and later ones into a partial that is added to it; the full
// grads are dropped once the op completes (or at once with bf16 reduction, whose input is a
// rounded copy).
void Engine::reduce_unit_grads(UnitState& s) {
  const bool bf16 = options_.reduce_dtype == DType::bf16;
  auto on_wire = [&](const Tensor& grads) {
    if (!bf16) return grads;
    Tensor wire = Tensor::empty({grads.numel()}, DType::bf16, MemTag::comm, options_.device);
    convert(wire, grads);
    return wire;
  };
  switch (options_.zero_stage) {
    case 0: {
      Bucket& b = buckets_[bucket_of_unit_[unit_index(s)]];
      if (++b.ready < b.last_unit - b.first_unit + 1) break;
      if (!bf16) {
        pending_.push_back({comm_.all_reduce(b.grads), {}, {}, false, {}});
      } else {
        Tensor wire = on_wire(b.grads);
        pending_.push_back({comm_.all_reduce(wire), wire, b.grads, false, {}});
        while (pending_.size() > kMaxReductionsInFlight) finish_oldest_reduction();  // bound the copies
      }
      break;
    }
    case 1:
      s.shard_stale = false;  // the reduction writes all of it
      if (!bf16) {
        pending_.push_back({comm_.reduce_scatter(s.shard_grads, s.full_grads), {}, {}, false, {}});
      } else {
        Tensor wire = on_wire(s.full_grads), out = Tensor::empty({s.shard}, DType::bf16, MemTag::comm, options_.device);
        pending_.push_back({comm_.reduce_scatter(out, wire), out, s.shard_grads, false, wire});
        while (pending_.size() > kMaxReductionsInFlight) finish_oldest_reduction();  // bound the copies
      }
      break;
    default: {
      // The step's first reduction of this unit writes the shard itself (fp32) or is
      // converted into it (bf16); later micro-batches' are added to it.
      Tensor wire = on_wire(s.full_grads);
      const bool into_shard = s.shard_stale && !bf16;
      Tensor partial = into_shard ? s.shard_grads
                                  : Tensor::empty({s.shard}, options_.reduce_dtype,
                                                  bf16 ? MemTag::comm : MemTag::grads, options_.device);
      pending_.push_back({comm_.reduce_scatter(partial, wire), into_shard ? Tensor() : partial, s.shard_grads,
                          !s.shard_stale, wire});
      s.shard_stale = false;
      s.unit->bind_grads(Tensor());
      s.full_grads = Tensor();
      // Bound the full gradients alive at once: finish the oldest reductions while this one
      // overlaps the next unit's backward.
      while (pending_.size() > kMaxReductionsInFlight) finish_oldest_reduction();
    }
  }
}

void Engine::finish_oldest_reduction() {
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  p.work->wait();
  if (!p.result.defined()) return;
  if (p.accumulate)
    add_inplace(p.dest, p.result);
  else
    convert(p.dest, p.result);
}

void Engine::finish_reductions() {
  while (!pending_.empty()) finish_oldest_reduction();
}

void Engine::zero_grads() {
  finish_reductions();
  // Stage 0 on the CPU: no pass at all. The units mark their gradients stale, and backward
  // writes over them (a GEMM with beta 0 for each weight) or zeroes each just before adding to
  // it; post_backward zeroes whatever backward left stale. On gpt2-124m the fill wrote 500 MB
  // (11-12 ms) and the weight-gradient GEMMs read it back. Stages 1-3 leave the optimizer's
  // shard stale as well: the first reduction writes over it.
  if (overwrites_grads()) {
    for (auto& s : units_) {
      if (s->full_grads.defined()) s->unit->mark_grads_stale();
      s->shard_stale = options_.zero_stage > 0;
    }
  } else if (all_grads_.defined()) {
    // Every thread writes (a serial memset of gpt2-124m's 500 MB took 4% of its step). At
    // stage 0 every unit's gradients (its shard is the same buffer) lie in all_grads_: one fill.
    fill(all_grads_, 0.f);
  } else {
    for (auto& s : units_) {
      if (s->full_grads.defined()) fill(s->full_grads, 0.f);
      if (s->shard_grads.defined()) fill(s->shard_grads, 0.f);
    }
  }
  step_totals_.zero_();
}

// ---- the optimizer step --------------------------------------------------------------------

StepStats Engine::step(float lr, float grad_multiplier) {
  finish_reductions();
  release_gathered_params();  // e.g. kept for a backward that did not come
  for (auto& s : units_) {  // a step without a backward (or a unit without one)
    s->unit->zero_stale_grads();
    if (s->shard_stale) fill(s->shard_grads, 0.f);
    s->shard_stale = false;
  }
  Tensor device_sumsq = step_totals_.view(1, {1});
  device_sumsq.zero_();
  for (ParamShard& s : shards_) sum_squares_accumulate(device_sumsq, s.grads);
  // On a GPU, the step's one wait: the loss total and the sum of squares come back together.
  const Tensor totals = step_totals_.device().is_cpu() ? step_totals_ : step_totals_.to(Device::cpu(), MemTag::comm);
  StepStats stats;
  stats.loss_sum = totals.data<double>()[0];
  Tensor sumsq = Tensor::empty({1}, DType::f64, MemTag::comm);
  sumsq.data<double>()[0] = totals.data<double>()[1];
  if (options_.zero_stage > 0) comm_.all_reduce(sumsq)->wait();  // stage 0 grads are already global
  stats.grad_norm = std::sqrt(sumsq.data<double>()[0]) * grad_multiplier;
  if (!std::isfinite(stats.grad_norm)) {
    stats.skipped = true;
    return stats;
  }
  stats.clip_scale = clip_scale(stats.grad_norm, options_.grad_clip);
  optimizer_->step(shards_, lr, stats.clip_scale * grad_multiplier);
  publish_params();
  ++params_version_;
  for (size_t i = 0; i < units_.size(); ++i)  // written by the step (stage 0)
    if (shards_[i].compute.defined() && units_[i]->compute_version >= 0) units_[i]->compute_version = params_version_;
  return stats;
}

// Stages 1-2 updated only their own range of the resident full params: gather the rest in
// place. Stage 0 updated everything everywhere; stage 3 gathers on demand.
void Engine::publish_params() {
  if (options_.zero_stage == 0 || !params_resident()) return;
  std::vector<WorkPtr> works;
  for (auto& s : units_) works.push_back(comm_.all_gather(s->full_params, s->shard_params));
  for (auto& w : works) w->wait();
}

Engine::OwnedState Engine::owned_state(size_t unit) {
  ZT_CHECK(unit < units_.size(), "unit {}", unit);
  optimizer_->init_state(shards_);
  const UnitState& s = *units_[unit];
  OwnedState out;
  out.begin = options_.zero_stage == 0 ? 0 : comm_.rank() * s.shard;
  out.tensors.push_back({"params", s.shard_params});
  for (auto& named : optimizer_->state(unit)) out.tensors.push_back(named);
  return out;
}

std::vector<std::string> Engine::saved_tensor_names() const {
  std::vector<std::string> names{"params"};
  for (auto& n : optimizer_->state_names()) names.push_back(n);
  return names;
}

void Engine::publish_loaded_params() {
  release_gathered_params();
  publish_params();
  ++params_version_;
}

void Engine::refresh_compute(UnitState& s) {
  if (options_.compute_dtype == DType::f32) return;
  if (s.compute.defined() && s.compute_version == params_version_) return;
  if (!s.compute.defined())
    s.compute = Tensor::empty({s.padded}, options_.compute_dtype, MemTag::params, options_.device);
  convert(s.compute, s.full_params);
  s.unit->bind_compute(s.compute);
  s.compute_version = params_version_;
}

ModelStateBytes Engine::model_state_bytes() const {
  ModelStateBytes b;
  for (size_t i = 0; i < units_.size(); ++i) {
    const UnitState& s = *units_[i];
    b.params += (params_resident() ? s.padded : s.shard) * 4;
    b.grads += (options_.zero_stage == 0 ? s.padded : options_.zero_stage == 1 ? s.padded + s.shard : s.shard) * 4;
    for (auto& [name, t] : optimizer_->state(i)) b.optimizer += static_cast<int64_t>(t.nbytes());
  }
  return b;
}

}  // namespace zt
