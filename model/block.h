// Pre-norm Transformer block: x2 = x + Attn(Norm1(x)); y = x2 + MLP(Norm2(x2)).
// gpt2: LayerNorm, fused c_attn, GELU MLP, biases. llama: RMSNorm, q/k/v + RoPE, GQA,
// SwiGLU MLP (gate|up fused), no biases except optional q/k/v biases (Qwen2).
#pragma once
#include "model/layers.h"
#include "model/module.h"
#include "model/spec.h"

namespace zt {

// Backward scratch shared by every block of a model (only one block runs at a time).
struct BlockScratch {
  Tensor dln, dh, da, datty, dqkv;
};

class Block : public Module {
 public:
  Block(Unit& unit, const ModelSpec& spec, int layer, const Tensor* rope_table,
        BlockScratch* scratch);
  void forward(Stream& s) override;
  void backward(Stream& s) override;

 private:
  void ensure_buffers(int64_t B, int64_t T);
  AttnShape attn_shape(int64_t B, int64_t T) const;

  const ModelSpec spec_;
  const Tensor* rope_table_;  // (max_seq_len, head_dim) for llama, null for gpt2
  BlockScratch* scratch_;
  Norm norm1_, norm2_;
  Linear qkv_, out_proj_, fc_, fc_proj_;
  int64_t ff_width_ = 0;  // fc output width: d_ff (GELU) or 2*d_ff (SwiGLU gate|up)

  // Saved activations for backward; reused across steps.
  Tensor x_in_;                       // the stream's input (owned by the previous module)
  Tensor ln1_, mean1_, rstd1_, qkv_buf_, probs_, atty_;
  Tensor x2_, ln2_, mean2_, rstd2_, h_, a_, y_;
};

}  // namespace zt
