#include "model/block.h"

#include <fmt/format.h>

#include "core/profiler.h"

namespace zt {

Block::Block(Unit& unit, const ModelSpec& spec, int layer, const Tensor* rope_table,
             BlockScratch* scratch)
    : Module(unit), spec_(spec), rope_table_(rope_table), scratch_(scratch) {
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
  norm2_ = norm1_;
  qkv_ = {&unit, -1, -1, -1, -1, C, q_out + 2 * kv_out};
  out_proj_ = {&unit, -1, -1, -1, -1, q_out, C};
  ff_width_ = gpt2 ? F : 2 * F;
  fc_ = {&unit, -1, -1, -1, -1, C, ff_width_};
  fc_proj_ = {&unit, -1, -1, -1, -1, F, C};

  if (gpt2) {
    norm1_.w = P("ln_1.weight", {C}, K::norm, I::ones);
    norm1_.b = P("ln_1.bias", {C}, K::norm, I::zeros);
    qkv_.w_first = qkv_.w_last = P("attn.c_attn.weight", {qkv_.out, C}, K::matrix, I::normal);
    qkv_.b_first = qkv_.b_last = P("attn.c_attn.bias", {qkv_.out}, K::bias, I::zeros);
    out_proj_.w_first = out_proj_.w_last = P("attn.c_proj.weight", {C, q_out}, K::matrix, I::residual);
    out_proj_.b_first = out_proj_.b_last = P("attn.c_proj.bias", {C}, K::bias, I::zeros);
    norm2_.w = P("ln_2.weight", {C}, K::norm, I::ones);
    norm2_.b = P("ln_2.bias", {C}, K::norm, I::zeros);
    fc_.w_first = fc_.w_last = P("mlp.c_fc.weight", {F, C}, K::matrix, I::normal);
    fc_.b_first = fc_.b_last = P("mlp.c_fc.bias", {F}, K::bias, I::zeros);
    fc_proj_.w_first = fc_proj_.w_last = P("mlp.c_proj.weight", {C, F}, K::matrix, I::residual);
    fc_proj_.b_first = fc_proj_.b_last = P("mlp.c_proj.bias", {C}, K::bias, I::zeros);
  } else {
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
    norm2_.w = P("post_attention_layernorm.weight", {C}, K::norm, I::ones);
    // gate and up adjacent: one fused [2F, C] matrix whose output is [gate | up].
    fc_.w_first = P("mlp.gate_proj.weight", {F, C}, K::matrix, I::normal);
    fc_.w_last = P("mlp.up_proj.weight", {F, C}, K::matrix, I::normal);
    fc_proj_.w_first = fc_proj_.w_last = P("mlp.down_proj.weight", {C, F}, K::matrix, I::residual);
  }
}

AttnShape Block::attn_shape(int64_t B, int64_t T) const {
  return {B, T, spec_.n_head, spec_.n_kv_head, spec_.head_dim()};
}

void Block::set_checkpointed(BlockActivations* shared) {
  act_ = shared ? shared : &own_;
  if (shared) own_ = {};
}

void Block::ensure_buffers(int64_t B, int64_t T) {
  const int64_t N = B * T, C = spec_.d_model, F = spec_.d_ff;
  BlockActivations& v = *act_;
  ensure(v.ln1, {N, C}, MemTag::activations, act_dtype_);
  ensure(v.mean1, {N});
  ensure(v.rstd1, {N});
  ensure(v.qkv, {N, qkv_.out}, MemTag::activations, act_dtype_);
  ensure(v.lse, {B, spec_.n_head, T});  // f32 at any precision (see attention_forward)
  ensure(v.atty, {N, out_proj_.in}, MemTag::activations, act_dtype_);
  ensure(v.x2, {N, C});
  ensure(v.ln2, {N, C}, MemTag::activations, act_dtype_);
  ensure(v.mean2, {N});
  ensure(v.rstd2, {N});
  ensure(v.h, {N, ff_width_}, MemTag::activations, act_dtype_);
  ensure(v.a, {N, F}, MemTag::activations, act_dtype_);
  ensure(y_, {N, C});
  BlockScratch& w = *scratch_;
  ensure(w.dln, {N, C}, MemTag::workspace);
  ensure(w.dh, {N, ff_width_}, MemTag::workspace);
  ensure(w.da, {N, F}, MemTag::workspace);
  ensure(w.datty, {N, out_proj_.in}, MemTag::workspace);
  ensure(w.dqkv, {N, qkv_.out}, MemTag::workspace);
}

void Block::forward(Stream& s) {
  ensure_buffers(s.B, s.T);
  x_in_ = s.x;
  run_forward(s.B, s.T, /*output=*/true);
  s.x = y_;
}

void Block::run_forward(int64_t B, int64_t T, bool output) {
  BlockActivations& v = *act_;
  const AttnShape shape = attn_shape(B, T);
  norm1_.forward(v.ln1, v.mean1, v.rstd1, x_in_);
  qkv_.forward(v.qkv, v.ln1);
  if (rope_table_) {
    Tensor table = rope_table_->slice(0, T);
    rope_forward(v.qkv, table, shape);
  }
  attention_forward(v.atty, v.lse, v.qkv, shape);
  out_proj_.forward(v.x2, v.atty);
  add_inplace(v.x2, x_in_);

  norm2_.forward(v.ln2, v.mean2, v.rstd2, v.x2);
  fc_.forward(v.h, v.ln2);
  if (spec_.gpt2())
    gelu_forward(v.a, v.h);
  else
    swiglu_forward(v.a, v.h);
  if (!output) return;  // backward does not read y
  fc_proj_.forward(y_, v.a);
  add_inplace(y_, v.x2);
}

// s.dx holds dL/dy on entry and dL/dx on exit, updated in place: the residual connections
// make dL/dx2 = dL/dy + (MLP path) and dL/dx = dL/dx2 + (attention path).
void Block::backward(Stream& s) {
  if (checkpointed()) {
    // Same kernels on the same input and parameters: the recomputed activations are bitwise
    // those of the forward pass. (At stage 3 the engine gathered the parameters for backward.)
    profiler::Scope span(profiler::Category::recompute, name());
    ensure_buffers(s.B, s.T);
    run_forward(s.B, s.T, /*output=*/false);
  }
  BlockScratch& w = *scratch_;
  BlockActivations& v = *act_;
  const AttnShape shape = attn_shape(s.B, s.T);
  Tensor& dres = s.dx;

  w.da.zero_();
  fc_proj_.backward(&w.da, dres, v.a);
  w.dh.zero_();
  if (spec_.gpt2())
    gelu_backward(w.dh, w.da, v.h);
  else
    swiglu_backward(w.dh, w.da, v.h);
  w.dln.zero_();
  fc_.backward(&w.dln, w.dh, v.ln2);
  norm2_.backward(dres, w.dln, v.x2, v.mean2, v.rstd2);

  w.datty.zero_();
  out_proj_.backward(&w.datty, dres, v.atty);
  w.dqkv.zero_();
  attention_backward(w.dqkv, w.datty, v.qkv, v.atty, v.lse, shape);
  if (rope_table_) {
    Tensor table = rope_table_->slice(0, s.T);
    rope_backward(w.dqkv, table, shape);
  }
  w.dln.zero_();
  qkv_.backward(&w.dln, w.dqkv, v.ln1);
  norm1_.backward(dres, w.dln, x_in_, v.mean1, v.rstd1);
}

}  // namespace zt
