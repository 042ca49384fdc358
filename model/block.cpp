#include "model/block.h"

#include <fmt/format.h>

#include "core/profiler.h"

namespace zt {

Block::Block(Unit& unit, const ModelSpec& spec, int layer, const Tensor* rope_table,
             BlockScratch* scratch)
    : Module(unit), spec_(spec), layer_(layer), rope_table_(rope_table), scratch_(scratch) {
  const int64_t C = spec.d_model, F = spec.d_ff, D = spec.head_dim();
  const int64_t q_out = spec.n_head * D, kv_out = spec.n_kv_head * D;
  const bool gpt2 = spec.gpt2();
  auto P = [&](const char* suffix, Shape shape, ParamKind kind, ParamInit init) {
    std::string prefix = gpt2 ? fmt::format("transformer.h.{}.", layer)
                              : fmt::format("model.layers.{}.", layer);
    return unit.add_param(prefix + suffix, std::move(shape), kind, init);
  };
  using K = ParamKind;
  using I = ParamInit;
  norm1_ = {&unit, -1, -1, !gpt2, spec.norm_eps};
  norm2_ = norm_mix_ = norm1_;
  qkv_ = {&unit, -1, -1, -1, -1, C, q_out + 2 * kv_out};
  gate_ = {&unit, -1, -1, -1, -1, C, q_out};
  out_proj_ = {&unit, -1, -1, -1, -1, q_out, C};
  ff_width_ = gpt2 ? F : 2 * F;
  fc_ = {&unit, -1, -1, -1, -1, C, ff_width_};
  fc_proj_ = {&unit, -1, -1, -1, -1, F, C};

  // The mixer writes into the residual stream like the output projections: their init.
  const Shape conv_shape = {C, 1, spec.worker_conv_width};
  if (gpt2) {
    if (spec.workers()) {
      norm_mix_.w = P("ln_mix.weight", {C}, K::norm, I::ones);
      norm_mix_.b = P("ln_mix.bias", {C}, K::norm, I::zeros);
      conv_ = {&unit, P("mix.conv.weight", conv_shape, K::matrix, I::residual),
               P("mix.conv.bias", {C}, K::bias, I::zeros)};
    }
    norm1_.w = P("ln_1.weight", {C}, K::norm, I::ones);
    norm1_.b = P("ln_1.bias", {C}, K::norm, I::zeros);
    qkv_.w_first = qkv_.w_last = P("attn.c_attn.weight", {qkv_.out, C}, K::matrix, I::normal);
    qkv_.b_first = qkv_.b_last = P("attn.c_attn.bias", {qkv_.out}, K::bias, I::zeros);
    out_proj_.w_first = out_proj_.w_last = P("attn.c_proj.weight", {C, q_out}, K::matrix, I::residual);
    out_proj_.b_first = out_proj_.b_last = P("attn.c_proj.bias", {C}, K::bias, I::zeros);
    if (spec.attn_gate) {  // gpt2 gives every linear a bias, the gate too
      gate_.w_first = gate_.w_last = P("attn.c_gate.weight", {q_out, C}, K::matrix, I::normal);
      gate_.b_first = gate_.b_last = P("attn.c_gate.bias", {q_out}, K::bias, I::zeros);
    }
    norm2_.w = P("ln_2.weight", {C}, K::norm, I::ones);
    norm2_.b = P("ln_2.bias", {C}, K::norm, I::zeros);
    fc_.w_first = fc_.w_last = P("mlp.c_fc.weight", {F, C}, K::matrix, I::normal);
    fc_.b_first = fc_.b_last = P("mlp.c_fc.bias", {F}, K::bias, I::zeros);
    fc_proj_.w_first = fc_proj_.w_last = P("mlp.c_proj.weight", {C, F}, K::matrix, I::residual);
    fc_proj_.b_first = fc_proj_.b_last = P("mlp.c_proj.bias", {C}, K::bias, I::zeros);
  } else {
    if (spec.workers()) {
      norm_mix_.w = P("mixer_layernorm.weight", {C}, K::norm, I::ones);
      conv_ = {&unit, P("mixer.conv.weight", conv_shape, K::matrix, I::residual), -1};
    }
    norm1_.w = P("input_layernorm.weight", {C}, K::norm, I::ones);
    // q, k, v adjacent: one fused [(H + 2 KVH) D, C] matrix.
    qkv_.w_first = P("self_attn.q_proj.weight", {q_out, C}, K::matrix, I::normal);
    P("self_attn.k_proj.weight", {kv_out, C}, K::matrix, I::normal);
    qkv_.w_last = P("self_attn.v_proj.weight", {kv_out, C}, K::matrix, I::normal);
    if (spec.attn_bias) {
      qkv_.b_first = P("self_attn.q_proj.bias", {q_out}, K::bias, I::zeros);
      P("self_attn.k_proj.bias", {kv_out}, K::bias, I::zeros);
      qkv_.b_last = P("self_attn.v_proj.bias", {kv_out}, K::bias, I::zeros);
    }
    out_proj_.w_first = out_proj_.w_last = P("self_attn.o_proj.weight", {C, q_out}, K::matrix, I::residual);
    // No bias, like o_proj: attn_bias (Qwen2) covers q/k/v only.
    if (spec.attn_gate)
      gate_.w_first = gate_.w_last = P("self_attn.gate_proj.weight", {q_out, C}, K::matrix, I::normal);
    norm2_.w = P("post_attention_layernorm.weight", {C}, K::norm, I::ones);
    if (spec.moe_layer(layer)) {
      moe_ = true;
      moe_ffn_ = MoeFfn(unit, spec, fmt::format("model.layers.{}.", layer));
      return;
    }
    // gate and up adjacent: one fused [2F, C] matrix whose output is [gate | up].
    fc_.w_first = P("mlp.gate_proj.weight", {F, C}, K::matrix, I::normal);
    fc_.w_last = P("mlp.up_proj.weight", {F, C}, K::matrix, I::normal);
    fc_proj_.w_first = fc_proj_.w_last = P("mlp.down_proj.weight", {C, F}, K::matrix, I::residual);
  }
}

AttnShape Block::attn_shape(int64_t B, int64_t Tc) const {
  return {B, Tc, spec_.n_head, spec_.n_kv_head, spec_.head_dim()};
}

void Block::set_checkpointed(BlockActivations* shared) {
  act_ = shared ? shared : &own_;
  if (shared) own_ = {};
}

void Block::ensure_buffers(int64_t B, int64_t T) {
  const int64_t N = B * T, Nc = B * spec_.core_rows(T), C = spec_.d_model;
  BlockActivations& v = *act_;
  BlockScratch& w = *scratch_;
  ensure(y_, {N, C});
  if (spec_.workers()) {
    ensure(v.lnmix, {N, C}, MemTag::activations, act_dtype_);
    ensure(v.meanmix, {N});
    ensure(v.rstdmix, {N});
    ensure(w.mix, {N, C}, MemTag::workspace);
    if (Nc == 0) return;  // fewer than k positions: no worker yet
    ensure(v.xw, {Nc, C});
    ensure(w.rows, {Nc, C}, MemTag::workspace);
  }
  ensure_core_buffers(B, Nc / B);
}

void Block::ensure_core_buffers(int64_t B, int64_t Tc) {
  const int64_t Nc = B * Tc, C = spec_.d_model, F = spec_.d_ff, HD = out_proj_.in;
  BlockActivations& v = *act_;
  BlockScratch& w = *scratch_;
  ensure(v.ln1, {Nc, C}, MemTag::activations, act_dtype_);
  ensure(v.mean1, {Nc});
  ensure(v.rstd1, {Nc});
  ensure(v.qkv, {Nc, qkv_.out}, MemTag::activations, act_dtype_);
  ensure(v.lse, {B, spec_.n_head, Nc / B});  // f32 at any precision (see attention_forward)
  ensure(v.atty, {Nc, HD}, MemTag::activations, act_dtype_);
  if (spec_.attn_gate) {
    ensure(v.gate, {Nc, HD}, MemTag::activations, act_dtype_);
    ensure(v.gated, {Nc, HD}, MemTag::activations, act_dtype_);
    ensure(w.dgate, {Nc, HD}, MemTag::workspace);
    ensure(w.dattn, {Nc, HD}, MemTag::workspace);
  }
  ensure(v.x2, {Nc, C});
  ensure(v.ln2, {Nc, C}, MemTag::activations, act_dtype_);
  ensure(v.mean2, {Nc});
  ensure(v.rstd2, {Nc});
  ensure(w.dln, {Nc, C}, MemTag::workspace);
  if (moe_) {
    moe_ffn_.ensure_buffers(v.moe, w.moe, Nc, B, act_dtype_);
  } else {
    ensure(v.h, {Nc, ff_width_}, MemTag::activations, act_dtype_);
    ensure(v.a, {Nc, F}, MemTag::activations, act_dtype_);
    ensure(w.dh, {Nc, ff_width_}, MemTag::workspace);
    ensure(w.da, {Nc, F}, MemTag::workspace);
  }
  ensure(w.datty, {Nc, HD}, MemTag::workspace);
  ensure(w.dqkv, {Nc, qkv_.out}, MemTag::workspace);
}

void Block::forward(Stream& s) {
  if (s.cache) {
    decode(s);
    return;
  }
  ensure_buffers(s.B, s.T);
  x_in_ = s.x;
  run_forward(s.B, s.T, /*output=*/true);
  s.x = y_;
  if (moe_) {
    // Token-weighted like loss_sum: divided by the step's tokens it is aux_loss_coef times the
    // mean over sequences.
    s.aux_loss_sum += spec_.aux_loss_coef * aux_sum_ * static_cast<double>(s.T);
    if (s.need_backward) moe_ffn_.count_load(act_->moe, load_);
  }
}

void Block::run_forward(int64_t B, int64_t T, bool output) {
  if (!spec_.workers()) {
    core_forward(x_in_, output ? &y_ : nullptr, B, T);
    return;
  }
  // x1 = x + Conv(NormMix(x)) over all T rows; the output starts as x1 (backward does not
  // read x1 itself, so a recompute builds it in scratch and keeps only its worker rows).
  BlockActivations& v = *act_;
  const int64_t k = spec_.worker_interval, W = spec_.core_rows(T);
  Tensor& x1 = output ? y_ : scratch_->mix;
  norm_mix_.forward(v.lnmix, v.meanmix, v.rstdmix, x_in_);
  conv_.forward(x1, v.lnmix, T);
  add_inplace(x1, x_in_);
  if (W == 0) return;
  gather_worker_rows(v.xw, x1, T, k);  // (B*W, C)
  Tensor* yw = output ? &scratch_->rows : nullptr;
  core_forward(v.xw, yw, B, W);
  if (output) scatter_worker_rows(y_, *yw, T, k);
}

void Block::core_forward(const Tensor& xin, Tensor* yout, int64_t B, int64_t Tc, KVCacheLayer* cache) {
  BlockActivations& v = *act_;
  const AttnShape shape = attn_shape(B, Tc);
  norm1_.forward(v.ln1, v.mean1, v.rstd1, xin);
  qkv_.forward(v.qkv, v.ln1);
  // Attention's positions: rows [0, Tc), or the next cache row when decoding. Workers rotate
  // by their index among workers.
  const int64_t first = cache ? cache->len : 0;
  if (rope_table_) {
    Tensor table = rope_table_->slice(first, first + Tc);
    rope_forward(v.qkv, table, shape);
  }
  if (cache)
    attention_decode(v.atty, v.qkv, cache->k, cache->v, cache->len++, shape);
  else
    attention_forward(v.atty, v.lse, v.qkv, shape);
  if (spec_.attn_gate) {
    gate_.forward(v.gate, v.ln1);
    sigmoid_gate_forward(v.gated, v.atty, v.gate);
    out_proj_.forward(v.x2, v.gated);
  } else {
    out_proj_.forward(v.x2, v.atty);
  }
  add_inplace(v.x2, xin);

  norm2_.forward(v.ln2, v.mean2, v.rstd2, v.x2);
  if (moe_) {
    if (yout) yout->copy_from(v.x2);  // the experts add into the residual
    aux_sum_ = moe_ffn_.forward(v.moe, scratch_->moe, v.ln2, yout, B, Tc);
    return;
  }
  fc_.forward(v.h, v.ln2);
  if (spec_.gpt2())
    gelu_forward(v.a, v.h);
  else
    swiglu_forward(v.a, v.h);
  if (!yout) return;  // backward does not read y
  fc_proj_.forward(*yout, v.a);
  add_inplace(*yout, v.x2);
}

// s.dx holds dL/dy on entry and dL/dx on exit, updated in place.
void Block::backward(Stream& s) {
  if (checkpointed()) {
    // Same kernels on the same input and parameters: the recomputed activations are bitwise
    // those of the forward pass. (At stage 3 the engine gathered the parameters for backward.)
    profiler::Scope span(profiler::Category::recompute, name());
    ensure_buffers(s.B, s.T);
    run_forward(s.B, s.T, /*output=*/false);
  }
  // The objective holds aux_loss_coef times the mean over the step's sequences of their aux
  // loss; grad_scale is d(objective)/d(token loss) = 1 / tokens per step (times a loss scale).
  aux_grad_ = spec_.aux_loss_coef * s.grad_scale * static_cast<float>(s.T);
  Tensor& dres = s.dx;
  if (!spec_.workers()) {
    core_backward(dres, x_in_, s.B, s.T);
    return;
  }
  BlockActivations& v = *act_;
  BlockScratch& w = *scratch_;
  const int64_t k = spec_.worker_interval, W = spec_.core_rows(s.T);
  // y = x1 off the worker rows and Core(x1[workers]) on them, so dL/dx1 is dL/dy with the
  // worker rows replaced by the core's input gradient.
  if (W > 0) {
    gather_worker_rows(w.rows, dres, s.T, k);
    core_backward(w.rows, v.xw, s.B, W);
    scatter_worker_rows(dres, w.rows, s.T, k);
  }
  // x1 = x + Conv(NormMix(x)): dL/dx = dL/dx1 + the mixer's path.
  w.mix.zero_();
  conv_.backward(w.mix, dres, v.lnmix, s.T);
  norm_mix_.backward(dres, w.mix, x_in_, v.meanmix, v.rstdmix);
}

// The residual connections make dL/dx2 = dL/dy + (MLP path) and dL/dx = dL/dx2 + (attention
// path), accumulated into dres.
void Block::core_backward(Tensor& dres, const Tensor& xin, int64_t B, int64_t Tc) {
  BlockScratch& w = *scratch_;
  BlockActivations& v = *act_;
  const AttnShape shape = attn_shape(B, Tc);

  if (moe_) {
    w.dln.zero_();
    moe_ffn_.backward(v.moe, w.moe, w.dln, dres, v.ln2, Tc, aux_grad_);
  } else {
    // Fresh gradients are written over the scratch, not added to a zeroed copy.
    fc_proj_.backward(&w.da, dres, v.a, GradWrite::overwrite);
    if (spec_.gpt2())
      gelu_backward(w.dh, w.da, v.h, GradWrite::overwrite);
    else
      swiglu_backward(w.dh, w.da, v.h, GradWrite::overwrite);
    fc_.backward(&w.dln, w.dh, v.ln2, GradWrite::overwrite);
  }
  norm2_.backward(dres, w.dln, v.x2, v.mean2, v.rstd2);

  out_proj_.backward(&w.datty, dres, spec_.attn_gate ? v.gated : v.atty, GradWrite::overwrite);
  Tensor* dattn = &w.datty;  // d(attention's output)
  if (spec_.attn_gate) {
    w.dattn.zero_();
    w.dgate.zero_();
    sigmoid_gate_backward(w.dattn, w.dgate, w.datty, v.atty, v.gate);
    dattn = &w.dattn;
  }
  attention_backward(w.dqkv, *dattn, v.qkv, v.atty, v.lse, shape, GradWrite::overwrite);
  if (rope_table_) {
    Tensor table = rope_table_->slice(0, Tc);
    rope_backward(w.dqkv, table, shape);
  }
  qkv_.backward(&w.dln, w.dqkv, v.ln1, GradWrite::overwrite);
  if (spec_.attn_gate) gate_.backward(&w.dln, w.dgate, v.ln1);
  norm1_.backward(dres, w.dln, xin, v.mean1, v.rstd1);
}

}  // namespace zt
