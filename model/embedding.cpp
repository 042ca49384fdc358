#include "model/embedding.h"

#include "core/kernels.h"

namespace zt {

TokenEmbedding::TokenEmbedding(Unit& unit, const ModelSpec& spec) : Module(unit), C_(spec.d_model) {
  const bool gpt2 = spec.gpt2();
  wte_ = unit.add_param(gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight",
                        {spec.vocab_size, spec.d_model}, ParamKind::embedding, ParamInit::normal);
  if (gpt2)
    wpe_ = unit.add_param("transformer.wpe.weight", {spec.max_seq_len, spec.d_model},
                          ParamKind::embedding, ParamInit::normal);
}

void TokenEmbedding::forward(Stream& s) {
  ensure(out_, {s.rows(), C_});
  Tensor tokens = s.tokens.reshape({s.rows()});
  Tensor wte = unit().param(wte_);
  if (wpe_ >= 0) {
    // Decoding with a cache: the rows are positions [pos, pos + T).
    Tensor wpe = unit().param(wpe_).slice(s.pos, s.pos + s.T);
    embedding_forward(out_, tokens, wte, &wpe, s.T);
  } else {
    embedding_forward(out_, tokens, wte, nullptr, s.T);
  }
  s.x = out_;
}

void TokenEmbedding::backward(Stream& s) {
  Tensor tokens = s.tokens.reshape({s.rows()});
  Tensor dwte = unit().grad_to_add(wte_);
  if (wpe_ >= 0) {
    Tensor dwpe = unit().grad_to_add(wpe_);
    embedding_backward(dwte, &dwpe, s.dx, tokens, s.T);
  } else {
    embedding_backward(dwte, nullptr, s.dx, tokens, s.T);
  }
}

FinalNorm::FinalNorm(Unit& unit, const ModelSpec& spec) : Module(unit) {
  const int64_t C = spec.d_model;
  norm_ = {&unit, -1, -1, !spec.gpt2(), spec.norm_eps};
  if (spec.gpt2()) {
    norm_.w = unit.add_param("transformer.ln_f.weight", {C}, ParamKind::norm, ParamInit::ones);
    norm_.b = unit.add_param("transformer.ln_f.bias", {C}, ParamKind::norm, ParamInit::zeros);
  } else {
    norm_.w = unit.add_param("model.norm.weight", {C}, ParamKind::norm, ParamInit::ones);
  }
}

void FinalNorm::forward(Stream& s) {
  const int64_t N = s.rows(), C = s.x.dim(1);
  ensure(out_, {N, C}, MemTag::activations, act_dtype_);  // read only by the LM head's matmuls
  ensure(mean_, {N});
  ensure(rstd_, {N});
  x_in_ = s.x;
  norm_.forward(out_, mean_, rstd_, x_in_);
  s.x = out_;
}

// From here on the residual gradient lives in dres_, which the blocks update in place.
void FinalNorm::backward(Stream& s) {
  ensure(dres_, x_in_.shape());
  dres_.zero_();
  norm_.backward(dres_, s.dx, x_in_, mean_, rstd_);
  s.dx = dres_;
}

LmHead::LmHead(Unit& unit, int weight_index, const ModelSpec& spec) : Module(unit) {
  proj_ = {&unit, weight_index, weight_index, -1, -1, spec.d_model, spec.vocab_size};
}

void LmHead::forward(Stream& s) {
  const int64_t N = s.rows();
  ensure(logits_, {N, proj_.out});
  x_in_ = s.x;
  proj_.forward(logits_, x_in_);
  s.logits = logits_;
  s.loss_sum = 0;
  if (!s.targets.defined()) return;
  ensure(losses_, {N});
  Tensor targets = s.targets.reshape({N});
  if (s.need_backward)
    cross_entropy_forward_backward(losses_, logits_, logits_, targets, s.grad_scale);
  else
    cross_entropy_forward(losses_, logits_, targets);
  if (s.loss_total.defined()) {
    sum_accumulate(s.loss_total, losses_);
    return;
  }
  Tensor total = Tensor::zeros({1}, DType::f64, MemTag::workspace, device_);
  sum_accumulate(total, losses_);
  if (!total.device().is_cpu()) total = total.to(Device::cpu(), MemTag::workspace);  // waits for the device
  s.loss_sum = total.data<double>()[0];
}

void LmHead::backward(Stream& s) {
  ensure(dx_, x_in_.shape());
  proj_.backward(&dx_, logits_, x_in_, GradWrite::overwrite);  // logits_ holds dlogits after a training forward
  s.dx = dx_;
}

}  // namespace zt
