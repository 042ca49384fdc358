// Mixture of Experts FFN (llama family): a softmax router picks each token's top_k of
// n_experts SwiGLU experts; the tokens of each expert are gathered into one contiguous block,
// run through the expert's two GEMMs, and added back weighted by the router (combine_rows).
// Shared experts, when configured, run on every token as one SwiGLU of n_shared * d_ff,
// scaled by sigmoid(x . w_g) (Qwen2-MoE's shared_expert_gate).
//
// Names are those of Hugging Face: Mixtral (block_sparse_moe.gate, experts.E.w1/w3/w2) without
// shared experts, Qwen2-MoE (mlp.gate, mlp.experts.E.gate/up/down_proj, mlp.shared_expert.*,
// mlp.shared_expert_gate) with them.
#pragma once
#include <vector>

#include "model/layers.h"
#include "model/spec.h"

namespace zt {

// What the MoE FFN's backward reads (N = rows, M = N * top_k routed slots).
struct MoeActivations {
  Tensor probs, idx, weights;      // router: (N,E) f32, (N,K) i32, (N,K) f32
  Tensor slot_rows, slots;         // dispatch: (M) token of each slot, (N,K) slot of each choice
  std::vector<int64_t> offsets;    // (E+1) expert e's slots are [offsets[e], offsets[e+1])
  Tensor xs, h, a;                 // per slot: input (M,C), gate|up (M,2F), SwiGLU (M,F)
  Tensor eo;                       // per slot: expert output (M,C) f32 (the router's gradient reads it)
  Tensor hs, as, so, gate, gate_s;  // shared: gate|up (N,2SF), SwiGLU (N,SF), output (N,C) f32,
                                    // gate pre-activation and sigmoid (N,1) f32
};

// Backward scratch, shared by every MoE block.
struct MoeScratch {
  Tensor logits, dlogits, dprobs, dweights;  // (N,E) (N,E) (N,E) (N,K)
  Tensor deo, da, dh, dxs;                   // per slot
  Tensor das, dhs, dso, dgate_s, dgate, junk;  // shared
  Tensor ones, identity;                     // (N,1) f32 ones, (N,1) i32 0..N-1
  Tensor aux;                                // (B) per-sequence aux loss
};

// Per-layer routing statistics of the training steps since the last reset.
struct MoeLoad {
  std::vector<int64_t> tokens;  // routed slots per expert
};

class MoeFfn {
 public:
  MoeFfn() = default;
  // Adds the router and expert parameters to unit under prefix ("model.layers.L.").
  MoeFfn(Unit& unit, const ModelSpec& spec, const std::string& prefix);

  void ensure_buffers(MoeActivations& act, MoeScratch& w, int64_t N, int64_t B, DType act_dtype);
  // x (N,C) the normed input -> y (N,C) += the FFN's output (y null: fill act only, for a
  // recompute). Returns the sum over the B sequences of their aux loss (unscaled).
  double forward(MoeActivations& act, MoeScratch& w, const Tensor& x, Tensor* y, int64_t B, int64_t T);
  // dx (N,C) += dL/dx from dy = dL/d(output); aux_scale = dL/d(aux of one sequence).
  void backward(MoeActivations& act, MoeScratch& w, Tensor& dx, const Tensor& dy, const Tensor& x, int64_t T,
                float aux_scale);
  // Adds act's routed slots per expert to load.
  void count_load(const MoeActivations& act, MoeLoad& load) const;

 private:
  struct Expert {
    Linear up;    // [gate | up] (2F, C)
    Linear down;  // (C, F)
  };
  ModelSpec spec_;
  Linear router_, shared_up_, shared_down_, shared_gate_;
  std::vector<Expert> experts_;
};

}  // namespace zt
