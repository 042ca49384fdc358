// Tensor-level RoPE: checks, then core/cpu/rope.
#include "core/cpu/rope.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {
namespace {

void check_rope_args(const Tensor& x, const Tensor& table, const AttnShape& s, const char* what) {
  ZT_CHECK(s.B > 0 && s.T > 0 && s.n_head > 0 && s.n_kv_head > 0 && s.head_dim > 0,
           "{}: bad shape B={} T={} H={} KVH={} D={}", what, s.B, s.T, s.n_head, s.n_kv_head,
           s.head_dim);
  ZT_CHECK(s.n_head % s.n_kv_head == 0, "{}: n_head {} not a multiple of n_kv_head {}", what,
           s.n_head, s.n_kv_head);
  ZT_CHECK(s.head_dim % 2 == 0, "{}: head_dim {} must be even", what, s.head_dim);
  ZT_CHECK(table.device() == x.device(), "{}: qkv on {}, table on {}", what, x.device().str(), table.device().str());
  ZT_CHECK(table.dtype() == DType::f32, "{}: the table must be f32", what);
  ZT_CHECK(x.numel() == s.B * s.T * s.qkv_width() && x.dim(-1) == s.qkv_width(),
           "{}: qkv is {}, expected (B={}, T={}, {})", what, x.shape_str(), s.B, s.T,
           s.qkv_width());
  ZT_CHECK(table.ndim() == 2 && table.dim(0) >= s.T && table.dim(1) == s.head_dim,
           "{}: table is {}, expected (>= {}, {})", what, table.shape_str(), s.T, s.head_dim);
}

}  // namespace

Tensor rope_table(int64_t T, int64_t head_dim, float theta) {
  ZT_CHECK(T > 0 && head_dim > 0 && head_dim % 2 == 0, "rope_table: T={} head_dim={}", T,
           head_dim);
  ZT_CHECK(theta > 0.f, "rope_table: theta {} must be positive", theta);
  Tensor table = Tensor::empty({T, head_dim}, DType::f32);
  cpu::rope_table(table.data<float>(), T, head_dim, static_cast<double>(theta));
  return table;
}

void rope_forward(Tensor& qkv, const Tensor& table, const AttnShape& s) {
  check_rope_args(qkv, table, s, "rope_forward");
  if (detail::on_cuda(qkv, "rope_forward")) {
    detail::check_float_on(qkv, qkv.device(), "rope_forward qkv");
    if constexpr (detail::kWithCuda)  // bf16/f16 qkv: rotated in f32, rounded once, as on the CPU
      cuda::rope_apply(qkv.raw(), detail::elem_of(qkv), table.data<float>(), s.B, s.T, s.qkv_width(),
                       s.n_head + s.n_kv_head, s.head_dim, /*inverse=*/false);
    return;
  }
  detail::F32Output x(qkv, "rope_forward qkv", /*in_place=*/true);  // bf16/f16 qkv: rotated in f32
  // q heads and k heads are adjacent at the start of each row: rotate n_head + n_kv_head heads.
  cpu::rope_apply(x.data(), table.data<float>(), s.B, s.T, s.qkv_width(), s.n_head + s.n_kv_head, s.head_dim,
                  /*inverse=*/false);
  x.store();
}

void rope_backward(Tensor& dqkv, const Tensor& table, const AttnShape& s) {
  check_rope_args(dqkv, table, s, "rope_backward");
  ZT_CHECK(dqkv.dtype() == DType::f32, "rope_backward: dqkv must be f32, is {}", dtype_name(dqkv.dtype()));
  if (detail::on_cuda(dqkv, "rope_backward")) {
    if constexpr (detail::kWithCuda)
      cuda::rope_apply(dqkv.raw(), cuda::Elem::f32, table.data<float>(), s.B, s.T, s.qkv_width(),
                       s.n_head + s.n_kv_head, s.head_dim, /*inverse=*/true);
    return;
  }
  cpu::rope_apply(dqkv.data<float>(), table.data<float>(), s.B, s.T, s.qkv_width(),
                  s.n_head + s.n_kv_head, s.head_dim, /*inverse=*/true);
}

}  // namespace zt
