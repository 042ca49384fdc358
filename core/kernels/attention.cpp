// Tensor-level attention and RoPE: check the packed qkv layout, then dispatch.
#include "core/cpu/attention.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {

static void check_attn(const Tensor& qkv, const AttnShape& s) {
  detail::check_f32_cpu(qkv, "qkv");
  ZT_CHECK(s.n_kv_head > 0 && s.n_head % s.n_kv_head == 0, "n_head {} not a multiple of n_kv_head {}",
           s.n_head, s.n_kv_head);
  ZT_CHECK(qkv.numel() == s.B * s.T * s.qkv_width(), "qkv {} for B={} T={} width {}",
           qkv.shape_str(), s.B, s.T, s.qkv_width());
}

Tensor rope_table(int64_t T, int64_t head_dim, float theta) {
  ZT_CHECK(head_dim % 2 == 0, "RoPE needs an even head_dim, got {}", head_dim);
  Tensor t = Tensor::empty({T, head_dim}, DType::f32, MemTag::params);
  cpu::rope_table(t.data<float>(), T, head_dim, theta);
  return t;
}

void rope_forward(Tensor& qkv, const Tensor& table, const AttnShape& s) {
  check_attn(qkv, s);
  ZT_CHECK(table.numel() >= s.T * s.head_dim, "rope table {} too small for T={}", table.shape_str(), s.T);
  cpu::rope_apply(qkv.data<float>(), table.data<float>(), s.B, s.T, s.n_head, s.n_kv_head, s.head_dim, false);
}

void rope_backward(Tensor& dqkv, const Tensor& table, const AttnShape& s) {
  check_attn(dqkv, s);
  ZT_CHECK(table.numel() >= s.T * s.head_dim, "rope table {} too small for T={}", table.shape_str(), s.T);
  cpu::rope_apply(dqkv.data<float>(), table.data<float>(), s.B, s.T, s.n_head, s.n_kv_head, s.head_dim, true);
}

void attention_forward(Tensor& out, Tensor& probs, const Tensor& qkv, const AttnShape& s) {
  check_attn(qkv, s);
  ZT_CHECK(out.numel() == s.B * s.T * s.n_head * s.head_dim && probs.numel() == s.B * s.n_head * s.T * s.T,
           "attention out {} probs {}", out.shape_str(), probs.shape_str());
  cpu::attention_forward(out.data<float>(), probs.data<float>(), qkv.data<float>(), s.B, s.T,
                         s.n_head, s.n_kv_head, s.head_dim);
}

void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& probs,
                        const AttnShape& s) {
  check_attn(qkv, s);
  detail::check_same_numel(dqkv, qkv, "dqkv");
  ZT_CHECK(dout.numel() == s.B * s.T * s.n_head * s.head_dim, "attention dout {}", dout.shape_str());
  cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), qkv.data<float>(),
                          probs.data<float>(), s.B, s.T, s.n_head, s.n_kv_head, s.head_dim);
}

}  // namespace zt
