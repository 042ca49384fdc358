// Pre-norm Transformer block: x2 = x + Attn(Norm1(x)); y = x2 + MLP(Norm2(x2)).
// gpt2: LayerNorm, fused c_attn, GELU MLP, biases. llama: RMSNorm, q/k/v + RoPE, GQA,
// SwiGLU MLP (gate|up fused), no biases except optional q/k/v biases (Qwen2).
//
// Options of both families (ModelSpec):
// - attn_gate: Attn's output is multiplied by sigmoid(Norm1(x) W_g) per head and channel
//   before the output projection (gated attention).
// - worker_interval k: a WorkerTransformer block. Every row first gets a causal depthwise
//   conv mixer with a residual, x1 = x + Conv(NormMix(x)); then only the worker rows
//   (t = k-1 mod k) run attention (causal over workers) and the MLP, updated in place:
//   y = x1 with y[workers] = Core(x1[workers]), where Core is the standard block above.
// - n_experts (llama): the MLP of blocks spec.moe_layer(l) is a Mixture of Experts (model/moe.h).
#pragma once
#include "model/kv_cache.h"
#include "model/layers.h"
#include "model/moe.h"
#include "model/module.h"
#include "model/spec.h"

namespace zt {

// Backward scratch shared by every block of a model (only one block runs at a time).
struct BlockScratch {
  Tensor dln, dh, da, datty, dqkv;
  Tensor dgate, dattn;  // attn_gate: d(gate pre-activation), d(ungated attention output)
  Tensor mix;           // workers (N,C): x1 while recomputing, then the mixer's dln
  Tensor rows;          // workers (Nc,C): the core's output rows, or their gradient
  MoeScratch moe;
};

// What a block's backward reads besides its input. A checkpointed block keeps none of it
// between its forward and its backward: every checkpointed block of a model shares one set,
// refilled by recomputing the block's forward (from its input, the previous module's output,
// which each module keeps) right before its backward.
// Core tensors have Nc = B * Tc rows: all N = B * T rows, or the B * (T / k) worker rows.
struct BlockActivations {
  Tensor ln1, mean1, rstd1, qkv, lse, atty;  // lse (B,H,Tc) f32: attention's log-sum-exp
  Tensor gate, gated;                        // attn_gate: pre-activation, atty * sigmoid(gate)
  Tensor x2, ln2, mean2, rstd2, h, a;
  Tensor lnmix, meanmix, rstdmix, xw;        // workers: the mixer's normed input, stats; x1[workers]
  MoeActivations moe;                        // MoE blocks: in place of h and a
};

class Block : public Module {
 public:
  Block(Unit& unit, const ModelSpec& spec, int layer, const Tensor* rope_table,
        BlockScratch* scratch);
  void forward(Stream& s) override;
  void backward(Stream& s) override;
  // Incremental decoding: a forward with s.cache fills (pos 0) or extends (one token) this
  // block's layer of the cache. Implemented in model/decode.cpp.
  void decode(Stream& s);
  // shared: the set checkpointed blocks share; null: keep activations (the default).
  void set_checkpointed(BlockActivations* shared);
  bool checkpointed() const { return act_ != &own_; }
  // MoE blocks: routed slots per expert of the training forwards since the caller reset it;
  // null for a dense block.
  MoeLoad* moe_load() { return moe_ ? &load_ : nullptr; }

 private:
  void ensure_buffers(int64_t B, int64_t T);
  // The core's activations and scratch for B sequences of Tc core rows.
  void ensure_core_buffers(int64_t B, int64_t Tc);
  // After a forward over a whole prompt: its keys, values and mixer inputs into the cache.
  void fill_cache(KVCacheLayer& cache, int64_t T) const;
  // Fills act_ from x_in_; with output, also the block's output y_.
  void run_forward(int64_t B, int64_t T, bool output);
  // The standard block on Nc = B * Tc rows: xin (Nc,C) -> yout (Nc,C) (null: skip the last
  // projection, which backward does not need).
  // With a cache (decoding, B = Tc = 1), attention runs over the cached positions and appends.
  void core_forward(const Tensor& xin, Tensor* yout, int64_t B, int64_t Tc,
                    KVCacheLayer* cache = nullptr);
  // dres (Nc,C): dL/dyout on entry, dL/dxin on exit.
  void core_backward(Tensor& dres, const Tensor& xin, int64_t B, int64_t Tc);
  AttnShape attn_shape(int64_t B, int64_t Tc) const;

  const ModelSpec spec_;
  const int layer_;
  const Tensor* rope_table_;  // (max_seq_len, head_dim) for llama, null for gpt2
  BlockScratch* scratch_;
  Norm norm1_, norm2_, norm_mix_;
  Linear qkv_, gate_, out_proj_, fc_, fc_proj_;
  CausalConv conv_;
  int64_t ff_width_ = 0;  // fc output width: d_ff (GELU) or 2*d_ff (SwiGLU gate|up)
  bool moe_ = false;      // the MLP is moe_ffn_
  MoeFfn moe_ffn_;
  MoeLoad load_;
  double aux_sum_ = 0;      // the last forward's aux loss summed over its sequences
  float aux_grad_ = 0;      // backward: dL/d(aux loss of one sequence)

  // Saved for backward and reused across steps.
  Tensor x_in_;  // the stream's input (owned by the previous module)
  BlockActivations own_;
  BlockActivations* act_ = &own_;
  Tensor y_;     // output; the next module's input, so never shared
};

}  // namespace zt
