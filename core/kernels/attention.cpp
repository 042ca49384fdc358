// Tensor-level causal attention: checks, then core/cpu/attention.
#include "core/cpu/attention.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {
namespace {

void check_shape(const AttnShape& s, const char* what) {
  ZT_CHECK(s.B > 0 && s.T > 0 && s.n_head > 0 && s.n_kv_head > 0 && s.head_dim > 0,
           "{}: bad shape B={} T={} H={} KVH={} D={}", what, s.B, s.T, s.n_head, s.n_kv_head,
           s.head_dim);
  ZT_CHECK(s.n_head % s.n_kv_head == 0, "{}: n_head {} not a multiple of n_kv_head {}", what,
           s.n_head, s.n_kv_head);
}

// any_float: the output, which may be bf16 or f16 (see detail::F32Output).
void check_tensor(const Tensor& t, int64_t numel, int64_t last, const char* name, const char* what,
                  bool any_float = false) {
  ZT_CHECK(t.defined(), "{}: {} is undefined", what, name);
  ZT_CHECK(t.device().is_cpu(), "{}: {} on {}, only the CPU path exists", what, name,
           t.device().str());
  ZT_CHECK(t.dtype() == DType::f32 || (any_float && (t.dtype() == DType::bf16 || t.dtype() == DType::f16)),
           "{}: {} is {}, expected f32", what, name, dtype_name(t.dtype()));
  ZT_CHECK(t.numel() == numel && t.dim(-1) == last, "{}: {} is {}, expected {} elements, last dim {}",
           what, name, t.shape_str(), numel, last);
}

cpu::AttnDims dims(const AttnShape& s) {
  return {s.B, s.T, s.n_head, s.n_kv_head, s.head_dim};
}

}  // namespace

void attention_forward(Tensor& out, Tensor& probs, const Tensor& qkv, const AttnShape& s) {
  const char* what = "attention_forward";
  check_shape(s, what);
  check_tensor(qkv, s.B * s.T * s.qkv_width(), s.qkv_width(), "qkv", what, /*any_float=*/true);
  check_tensor(out, s.B * s.T * s.n_head * s.head_dim, s.n_head * s.head_dim, "out", what, /*any_float=*/true);
  check_tensor(probs, s.B * s.n_head * s.T * s.T, s.T, "probs", what, /*any_float=*/true);
  const detail::F32Input in(qkv, "attention qkv");
  detail::F32Output o(out, "attention out"), p(probs, "attention probs");
  cpu::attention_forward(o.data(), p.data(), in.data(), dims(s));
  o.store();
  p.store();
}

void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& probs,
                        const AttnShape& s) {
  const char* what = "attention_backward";
  check_shape(s, what);
  check_tensor(qkv, s.B * s.T * s.qkv_width(), s.qkv_width(), "qkv", what, /*any_float=*/true);
  check_tensor(dqkv, s.B * s.T * s.qkv_width(), s.qkv_width(), "dqkv", what);
  check_tensor(dout, s.B * s.T * s.n_head * s.head_dim, s.n_head * s.head_dim, "dout", what);
  check_tensor(probs, s.B * s.n_head * s.T * s.T, s.T, "probs", what, /*any_float=*/true);
  ZT_CHECK(dqkv.raw() != qkv.raw(), "{}: dqkv must not alias qkv", what);
  const detail::F32Input q(qkv, "attention qkv"), p(probs, "attention probs");
  cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), q.data(), p.data(), dims(s));
}

}  // namespace zt
