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
  uint64_t seed = 1337;   // parameter init

  int64_t head_dim() const { return d_model / n_head; }
  bool gpt2() const { return family == Family::gpt2; }
  bool workers() const { return worker_interval > 0; }
  // Rows that run attention and the MLP in a sequence of T: all, or the T / k workers.
  int64_t core_rows(int64_t T) const { return workers() ? T / worker_interval : T; }
  // Forward+backward FLOPs per token: 6 per weight of every matmul plus attention's
  // 2 * 2 * T * d_model per layer (QK^T and PV) times 3 (fwd + bwd), counted for the full
  // T x T square as is customary. With workers, a block's matmuls and attention run on one
  // token in k (attention over T / k positions) and the conv mixer adds 6 per tap per channel.
  double train_flops_per_token(int64_t T) const;
};

inline std::string_view family_name(Family f) { return f == Family::gpt2 ? "gpt2" : "llama"; }

}  // namespace zt
