// The shape of a model, independent of how it was configured.
#pragma once
#include <cstdint>
#include <string_view>

namespace zt {

enum class Family : uint8_t { gpt2, llama };

struct ModelSpec {
  Family family = Family::gpt2;
  int64_t n_layer = 2, n_head = 2, n_kv_head = 2, d_model = 32, d_ff = 128;
  int64_t vocab_size = 64, max_seq_len = 64;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  bool tie_embeddings = true;
  bool attn_bias = true;  // q/k/v biases (gpt2 always has every bias)
  float init_std = 0.02f;
  // Gated attention (arXiv:2505.06708): attention's output times sigmoid(norm1(x) W_g), per
  // head and channel, before the output projection.
  bool attn_gate = false;
  // WorkerTransformer: > 0 makes positions t = k-1 (mod k) workers, the only rows that run
  // attention and the MLP; every row first goes through a causal depthwise Conv1d mixer of
  // worker_conv_width taps. 0: a standard Transformer.
  int64_t worker_interval = 0;
  int64_t worker_conv_width = 0;
  // Mixture of Experts (llama): n_experts > 0 makes the FFN of blocks l % moe_every == 0 a
  // softmax top-k router over n_experts SwiGLU experts of d_ff, plus n_shared_experts (fused
  // into one SwiGLU of n_shared_experts * d_ff behind a sigmoid gate) that every token uses.
  int64_t n_experts = 0, moe_top_k = 2, n_shared_experts = 0, moe_every = 1;
  float aux_loss_coef = 0.1f;
  bool norm_topk_prob = true;
  uint64_t seed = 1337;   // parameter init

  int64_t head_dim() const { return d_model / n_head; }
  bool gpt2() const { return family == Family::gpt2; }
  bool workers() const { return worker_interval > 0; }
  // Rows that run attention and the MLP in a sequence of T: all, or the T / k workers.
  int64_t core_rows(int64_t T) const { return workers() ? T / worker_interval : T; }
  bool moe_layer(int64_t layer) const { return n_experts > 0 && layer % moe_every == 0; }
  int64_t num_moe_layers() const { return n_experts > 0 ? (n_layer + moe_every - 1) / moe_every : 0; }
  // Forward+backward FLOPs per token: 6 per weight of every matmul plus attention's
  // 2 * 2 * T * d_model per layer (QK^T and PV) times 3 (fwd + bwd), counted for the full
  // T x T square as is customary. With workers, a block's matmuls and attention run on one
  // token in k (attention over T / k positions) and the conv mixer adds 6 per tap per channel.
  // MoE blocks count the FFN weights a token uses (top_k experts, the shared ones, the router).
  double train_flops_per_token(int64_t T) const;
};

inline std::string_view family_name(Family f) { return f == Family::gpt2 ? "gpt2" : "llama"; }

}  // namespace zt
