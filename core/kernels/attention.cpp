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

// any_float: a saved activation, which may be bf16 or f16 (see detail::F32Input/F32Output).
void check_tensor(const Tensor& t, int64_t numel, int64_t last, const char* name, const char* what,
                  bool any_float = false, Device device = Device::cpu()) {
  ZT_CHECK(t.defined(), "{}: {} is undefined", what, name);
  ZT_CHECK(t.device() == device, "{}: {} is on {}, the kernel runs on {}", what, name, t.device().str(),
           device.str());
  ZT_CHECK(t.dtype() == DType::f32 || (any_float && (t.dtype() == DType::bf16 || t.dtype() == DType::f16)),
           "{}: {} is {}, expected f32", what, name, dtype_name(t.dtype()));
  ZT_CHECK(t.numel() == numel && t.dim(-1) == last, "{}: {} is {}, expected {} elements, last dim {}",
           what, name, t.shape_str(), numel, last);
}

void check_qkv_out_lse(const Tensor& qkv, const Tensor& out, const Tensor& lse, const AttnShape& s,
                       const char* what, Device device) {
  check_shape(s, what);
  check_tensor(qkv, s.B * s.T * s.qkv_width(), s.qkv_width(), "qkv", what, /*any_float=*/true, device);
  check_tensor(out, s.B * s.T * s.n_head * s.head_dim, s.n_head * s.head_dim, "out", what, /*any_float=*/true,
               device);
  // Always f32: a log-sum-exp rounded to bf16 would be off by up to 0.2% of its magnitude,
  // which exp() turns into probabilities that no longer sum to one.
  check_tensor(lse, s.B * s.n_head * s.T, s.T, "lse", what, false, device);
}

[[maybe_unused]] cuda::AttnDims cuda_dims(const AttnShape& s) { return {s.B, s.T, s.n_head, s.n_kv_head, s.head_dim}; }

// The device kernels keep a head's row in registers: head dims up to cuda::kMaxAttnHeadDim.
void check_cuda_head_dim(const AttnShape& s, const char* what) {
  ZT_CHECK(s.head_dim <= cuda::kMaxAttnHeadDim, "{}: head_dim {} is past the CUDA kernel's {}", what, s.head_dim,
           cuda::kMaxAttnHeadDim);
}

cpu::AttnDims dims(const AttnShape& s) {
  return {s.B, s.T, s.n_head, s.n_kv_head, s.head_dim};
}

}  // namespace

void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv, const AttnShape& s) {
  const char* what = "attention_forward";
  const Device device = detail::on_cuda(out, what) ? out.device() : Device::cpu();
  check_qkv_out_lse(qkv, out, lse, s, what, device);
  if (!device.is_cpu()) {
    check_cuda_head_dim(s, what);
    if constexpr (detail::kWithCuda)
      cuda::attention_forward(out.raw(), detail::elem_of(out), lse.data<float>(), qkv.raw(), detail::elem_of(qkv),
                              cuda_dims(s));
    return;
  }
  if (qkv.dtype() == DType::bf16 && out.dtype() == DType::bf16) {  // mixed precision: read and written directly
    cpu::attention_forward(detail::bf16_data(out), lse.data<float>(), detail::bf16_data(qkv), dims(s));
    return;
  }
  const detail::F32Input in(qkv, "attention qkv");
  detail::F32Output o(out, "attention out");
  cpu::attention_forward(o.data(), lse.data<float>(), in.data(), dims(s));
  o.store();
}

void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                        const Tensor& lse, const AttnShape& s, GradWrite write) {
  const char* what = "attention_backward";
  const Device device = detail::on_cuda(dqkv, what) ? dqkv.device() : Device::cpu();
  check_qkv_out_lse(qkv, out, lse, s, what, device);
  check_tensor(dqkv, s.B * s.T * s.qkv_width(), s.qkv_width(), "dqkv", what, false, device);
  check_tensor(dout, s.B * s.T * s.n_head * s.head_dim, s.n_head * s.head_dim, "dout", what, false, device);
  ZT_CHECK(dqkv.raw() != qkv.raw(), "{}: dqkv must not alias qkv", what);
  if (!device.is_cpu()) {
    check_cuda_head_dim(s, what);
    if (write == GradWrite::overwrite) dqkv.zero_();  // the CUDA kernel accumulates
    if constexpr (detail::kWithCuda) {
      Tensor scratch = Tensor::empty({s.B * s.n_head * s.T}, DType::f32, MemTag::workspace, device);
      cuda::attention_backward(dqkv.data<float>(), dout.data<float>(), qkv.raw(), detail::elem_of(qkv), out.raw(),
                               detail::elem_of(out), lse.data<float>(), cuda_dims(s), scratch.data<float>());
    }
    return;
  }
  if (qkv.dtype() == DType::bf16 && out.dtype() == DType::bf16) {
    cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), detail::bf16_data(qkv), detail::bf16_data(out),
                            lse.data<float>(), dims(s), write == GradWrite::accumulate);
    return;
  }
  const detail::F32Input q(qkv, "attention qkv"), o(out, "attention out");
  cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), q.data(), o.data(), lse.data<float>(), dims(s),
                          write == GradWrite::accumulate);
}

void attention_decode(Tensor& out, const Tensor& qkv, Tensor& k_cache, Tensor& v_cache, int64_t pos,
                      const AttnShape& s) {
  const char* what = "attention_decode";
  const Device device = detail::on_cuda(out, what) ? out.device() : Device::cpu();
  check_shape(s, what);
  ZT_CHECK(s.B == 1 && s.T == 1, "{}: one position at a time, got B={} T={}", what, s.B, s.T);
  const int64_t kv_width = s.n_kv_head * s.head_dim;
  check_tensor(k_cache, k_cache.numel(), kv_width, "k_cache", what, false, device);
  check_tensor(v_cache, k_cache.numel(), kv_width, "v_cache", what, false, device);
  ZT_CHECK(pos >= 0 && pos < k_cache.dim(0), "{}: position {} outside the cache's {} rows", what, pos,
           k_cache.dim(0));
  check_tensor(out, s.n_head * s.head_dim, s.n_head * s.head_dim, "out", what, /*any_float=*/true, device);
  if (!device.is_cpu()) {
    check_cuda_head_dim(s, what);
    check_tensor(qkv, s.qkv_width(), s.qkv_width(), "qkv", what, /*any_float=*/true, device);
    if constexpr (detail::kWithCuda)
      cuda::attention_decode(out.raw(), detail::elem_of(out), qkv.raw(), detail::elem_of(qkv), k_cache.data<float>(),
                             v_cache.data<float>(), pos, cuda_dims(s));
    return;
  }
  const detail::F32Input in(qkv, "attention qkv");
  ZT_CHECK(qkv.numel() == s.qkv_width(), "{}: qkv is {}, expected one row of {}", what, qkv.shape_str(),
           s.qkv_width());
  detail::F32Output o(out, "attention out");
  cpu::attention_decode(o.data(), in.data(), k_cache.data<float>(), v_cache.data<float>(), pos, dims(s));
  o.store();
}

}  // namespace zt
