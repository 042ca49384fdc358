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
  uint64_t seed = 1337;   // parameter init

  int64_t head_dim() const { return d_model / n_head; }
  bool gpt2() const { return family == Family::gpt2; }
  // Forward+backward FLOPs per token: 6 per weight of every matmul plus attention's
  // 2 * 2 * T * d_model per layer (QK^T and PV) times 3 (fwd + bwd), counted for the full
  // T x T square as is customary.
  double train_flops_per_token(int64_t T) const;
};

inline std::string_view family_name(Family f) { return f == Family::gpt2 ? "gpt2" : "llama"; }

}  // namespace zt
