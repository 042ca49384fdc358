#include "model/moe.h"

#include <fmt/format.h>

#include "core/kernels.h"
#include "core/profiler.h"

namespace zt {

MoeFfn::MoeFfn(Unit& unit, const ModelSpec& spec, const std::string& prefix) : spec_(spec) {
  const int64_t C = spec.d_model, F = spec.d_ff, E = spec.n_experts, SF = spec.n_shared_experts * F;
  const bool shared = spec.n_shared_experts > 0;
  using K = ParamKind;
  using I = ParamInit;
  auto P = [&](const std::string& suffix, Shape shape, I init) {
    return unit.add_param(prefix + suffix, std::move(shape), K::matrix, init);
  };
  // Mixtral's names without shared experts, Qwen2-MoE's with them.
  const std::string base = shared ? "mlp." : "block_sparse_moe.";
  router_ = {&unit, -1, -1, -1, -1, C, E};
  router_.w_first = router_.w_last = P(base + "gate.weight", {E, C}, I::normal);
  experts_.resize(E);
  for (int64_t e = 0; e < E; ++e) {
    Expert& x = experts_[e];
    x.up = {&unit, -1, -1, -1, -1, C, 2 * F};
    x.down = {&unit, -1, -1, -1, -1, F, C};
    const std::string ex = fmt::format("{}experts.{}.", base, e);
    // gate and up adjacent: one fused [2F, C] matrix whose output is [gate | up].
    x.up.w_first = P(ex + (shared ? "gate_proj.weight" : "w1.weight"), {F, C}, I::normal);
    x.up.w_last = P(ex + (shared ? "up_proj.weight" : "w3.weight"), {F, C}, I::normal);
    x.down.w_first = x.down.w_last = P(ex + (shared ? "down_proj.weight" : "w2.weight"), {C, F}, I::residual);
  }
  if (shared) {
    shared_up_ = {&unit, -1, -1, -1, -1, C, 2 * SF};
    shared_down_ = {&unit, -1, -1, -1, -1, SF, C};
    shared_gate_ = {&unit, -1, -1, -1, -1, C, 1};
    shared_up_.w_first = P("mlp.shared_expert.gate_proj.weight", {SF, C}, I::normal);
    shared_up_.w_last = P("mlp.shared_expert.up_proj.weight", {SF, C}, I::normal);
    shared_down_.w_first = shared_down_.w_last = P("mlp.shared_expert.down_proj.weight", {C, SF}, I::residual);
    shared_gate_.w_first = shared_gate_.w_last = P("mlp.shared_expert_gate.weight", {1, C}, I::normal);
  }
}

namespace {
void ensure(Tensor& t, const Shape& shape, MemTag tag, DType dtype = DType::f32) {
  if (!t.defined() || t.shape() != shape || t.dtype() != dtype) t = Tensor::empty(shape, dtype, tag);
}
}  // namespace

void MoeFfn::ensure_buffers(MoeActivations& v, MoeScratch& w, int64_t N, int64_t B, DType act_dtype) {
  const int64_t C = spec_.d_model, F = spec_.d_ff, E = spec_.n_experts, K = spec_.moe_top_k, M = N * K;
  const MemTag A = MemTag::activations, W = MemTag::workspace;
  ensure(v.probs, {N, E}, A);
  ensure(v.idx, {N, K}, A, DType::i32);
  ensure(v.weights, {N, K}, A);
  ensure(v.slot_rows, {M}, A, DType::i32);
  ensure(v.slots, {N, K}, A, DType::i32);
  ensure(v.xs, {M, C}, A, act_dtype);
  ensure(v.h, {M, 2 * F}, A, act_dtype);
  ensure(v.a, {M, F}, A, act_dtype);
  ensure(v.eo, {M, C}, A);
  ensure(w.logits, {N, E}, W);
  ensure(w.dlogits, {N, E}, W);
  ensure(w.dprobs, {N, E}, W);
  ensure(w.dweights, {N, K}, W);
  ensure(w.deo, {M, C}, W);
  ensure(w.da, {M, F}, W);
  ensure(w.dh, {M, 2 * F}, W);
  ensure(w.dxs, {M, C}, W);
  ensure(w.aux, {B}, W);
  if (spec_.n_shared_experts > 0) {
    const int64_t SF = spec_.n_shared_experts * F;
    ensure(v.hs, {N, 2 * SF}, A, act_dtype);
    ensure(v.as, {N, SF}, A, act_dtype);
    ensure(v.so, {N, C}, A);
    ensure(v.gate, {N, 1}, A);
    ensure(v.gate_s, {N, 1}, A);
    ensure(w.das, {N, SF}, W);
    ensure(w.dhs, {N, 2 * SF}, W);
    ensure(w.dso, {N, C}, W);
    ensure(w.dgate_s, {N, 1}, W);
    ensure(w.dgate, {N, 1}, W);
    ensure(w.junk, {N, 1}, W);
    if (!w.ones.defined() || w.ones.numel() != N) {
      w.ones = Tensor::empty({N, 1}, DType::f32, W);
      fill(w.ones, 1.f);
      w.identity = Tensor::empty({N, 1}, DType::i32, W);
      for (int64_t n = 0; n < N; ++n) w.identity.data<int32_t>()[n] = static_cast<int32_t>(n);
    }
  }
}

double MoeFfn::forward(MoeActivations& v, MoeScratch& w, const Tensor& x, Tensor* y, int64_t B, int64_t T) {
  const int64_t E = spec_.n_experts;
  {
    profiler::Scope span(profiler::Category::forward, "moe.router");
    router_.forward(w.logits, x);
    moe_router_forward(v.probs, v.idx, v.weights, w.logits, spec_.norm_topk_prob);
    moe_dispatch(v.slot_rows, v.slots, v.offsets, v.idx, E);
  }
  {
    profiler::Scope span(profiler::Category::forward, "moe.experts");
    gather_rows(v.xs, x, v.slot_rows);
    // One GEMM pair per expert over its contiguous block of gathered rows.
    for (int64_t e = 0; e < E; ++e) {
      const int64_t lo = v.offsets[e], hi = v.offsets[e + 1];
      if (lo == hi) continue;
      Tensor h = v.h.slice(lo, hi);
      experts_[e].up.forward(h, v.xs.slice(lo, hi));
    }
    swiglu_forward(v.a, v.h);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t lo = v.offsets[e], hi = v.offsets[e + 1];
      if (lo == hi) continue;
      Tensor eo = v.eo.slice(lo, hi);
      experts_[e].down.forward(eo, v.a.slice(lo, hi));
    }
    if (y) combine_rows(*y, v.eo, v.slots, &v.weights);
  }
  if (spec_.n_shared_experts > 0) {
    profiler::Scope span(profiler::Category::forward, "moe.shared");
    shared_up_.forward(v.hs, x);
    swiglu_forward(v.as, v.hs);
    shared_down_.forward(v.so, v.as);
    shared_gate_.forward(v.gate, x);
    sigmoid_gate_forward(v.gate_s, w.ones, v.gate);  // sigmoid(gate)
    if (y) combine_rows(*y, v.so, w.identity, &v.gate_s);
  }
  Tensor aux = w.aux.slice(0, B);
  moe_aux_loss_forward(aux, v.probs, v.idx, T);
  double sum = 0;
  for (int64_t b = 0; b < B; ++b) sum += aux.data<float>()[b];
  return sum;
}

void MoeFfn::backward(MoeActivations& v, MoeScratch& w, Tensor& dx, const Tensor& dy, const Tensor& x, int64_t T,
                      float aux_scale) {
  const int64_t E = spec_.n_experts;
  if (spec_.n_shared_experts > 0) {
    profiler::Scope span(profiler::Category::backward, "moe.shared");
    w.dso.zero_();
    w.dgate_s.zero_();
    combine_rows_backward(w.dso, w.dgate_s, dy, v.so, w.identity, v.gate_s);
    w.dgate.zero_();
    sigmoid_gate_backward(w.junk, w.dgate, w.dgate_s, w.ones, v.gate);  // dgate += dgate_s * s (1 - s)
    shared_gate_.backward(&dx, w.dgate, x);
    w.das.zero_();
    shared_down_.backward(&w.das, w.dso, v.as);
    w.dhs.zero_();
    swiglu_backward(w.dhs, w.das, v.hs);
    shared_up_.backward(&dx, w.dhs, x);
  }
  {
    profiler::Scope span(profiler::Category::backward, "moe.experts");
    w.deo.zero_();
    w.dweights.zero_();
    combine_rows_backward(w.deo, w.dweights, dy, v.eo, v.slots, v.weights);
    w.da.zero_();
    for (int64_t e = 0; e < E; ++e) {
      const int64_t lo = v.offsets[e], hi = v.offsets[e + 1];
      if (lo == hi) continue;
      Tensor da = w.da.slice(lo, hi);
      experts_[e].down.backward(&da, w.deo.slice(lo, hi), v.a.slice(lo, hi));
    }
    w.dh.zero_();
    swiglu_backward(w.dh, w.da, v.h);
    w.dxs.zero_();
    for (int64_t e = 0; e < E; ++e) {
      const int64_t lo = v.offsets[e], hi = v.offsets[e + 1];
      if (lo == hi) continue;
      Tensor dxs = w.dxs.slice(lo, hi);
      experts_[e].up.backward(&dxs, w.dh.slice(lo, hi), v.xs.slice(lo, hi));
    }
    combine_rows(dx, w.dxs, v.slots, nullptr);  // the gather's backward
  }
  {
    profiler::Scope span(profiler::Category::backward, "moe.router");
    w.dprobs.zero_();
    if (spec_.aux_loss_coef > 0) moe_aux_loss_backward(w.dprobs, v.idx, T, aux_scale);
    w.dlogits.zero_();
    moe_router_backward(w.dlogits, &w.dprobs, w.dweights, v.probs, v.idx, spec_.norm_topk_prob);
    router_.backward(&dx, w.dlogits, x);
  }
}

void MoeFfn::count_load(const MoeActivations& v, MoeLoad& load) const {
  load.tokens.resize(spec_.n_experts, 0);
  for (int64_t e = 0; e < spec_.n_experts; ++e) load.tokens[e] += v.offsets[e + 1] - v.offsets[e];
}

}  // namespace zt
