// Token embedding (+ learned positions for gpt2) and the LM head with cross-entropy loss.
#pragma once
#include "model/layers.h"
#include "model/module.h"
#include "model/spec.h"

namespace zt {

// x (B*T, C) = wte[tokens] (+ wpe[t]).
class TokenEmbedding : public Module {
 public:
  TokenEmbedding(Unit& unit, const ModelSpec& spec);
  void forward(Stream& s) override;
  void backward(Stream& s) override;
  // Backward scatter-adds dx into the tables' gradients; the tables themselves are not read.
  bool backward_reads_params() const override { return false; }
  int wte_index() const { return wte_; }

 private:
  int64_t C_;
  int wte_ = -1, wpe_ = -1;
  Tensor out_;
};

// Final norm: the last module that sees the residual stream.
class FinalNorm : public Module {
 public:
  FinalNorm(Unit& unit, const ModelSpec& spec);
  void forward(Stream& s) override;
  void backward(Stream& s) override;

 private:
  Norm norm_;
  Tensor x_in_, out_, mean_, rstd_, dres_;
};

// logits (B*T, V) = x @ W^T with W the tied wte or an untied lm_head; with targets, the
// per-token cross-entropy. When training, dlogits overwrite logits in the same pass.
class LmHead : public Module {
 public:
  const char* name() const override { return "head"; }
  LmHead(Unit& unit, int weight_index, const ModelSpec& spec);
  void forward(Stream& s) override;
  void backward(Stream& s) override;

 private:
  Linear proj_;
  Tensor x_in_, logits_, losses_, dx_;
};

}  // namespace zt
