// Tensor-level matmul, elementwise ops, conversions and optimizer updates.
#include "core/cpu/gemm.h"
#include "core/cpu/ops.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {

using detail::check_f32_cpu;
using detail::check_same_numel;

void matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulOptions& o) {
  if (detail::on_cuda(out, "matmul")) {
    for (const Tensor* t : detail::TensorList{&out, &a, &b}) detail::check_f32_on(*t, out.device(), "matmul tensor");
  } else {
    check_f32_cpu(out, "out");
    check_f32_cpu(a, "a");
    check_f32_cpu(b, "b");
  }
  const int64_t ar = detail::rows(a), ac = detail::cols(a), br = detail::rows(b), bc = detail::cols(b);
  const int64_t M = o.trans_a ? ac : ar, K = o.trans_a ? ar : ac;
  const int64_t Kb = o.trans_b ? bc : br, N = o.trans_b ? br : bc;
  ZT_CHECK(K == Kb && detail::rows(out) == M && detail::cols(out) == N,
           "matmul: a {} b {} out {} (trans {} {})", a.shape_str(), b.shape_str(), out.shape_str(),
           o.trans_a, o.trans_b);
  if (!out.device().is_cpu()) {
    if constexpr (detail::kWithCuda) {
      cuda::GemmArgs g;
      g.trans_a = o.trans_a, g.trans_b = o.trans_b;
      g.M = M, g.N = N, g.K = K;
      g.A = a.raw(), g.lda = ac, g.B = b.raw(), g.ldb = bc, g.C = out.raw(), g.ldc = N;
      g.alpha = o.alpha, g.beta = o.beta;
      cuda::gemm(g);
    }
    return;
  }
  cpu::sgemm(o.trans_a, o.trans_b, M, N, K, o.alpha, a.data<float>(), ac, b.data<float>(), bc,
             o.beta, out.data<float>(), N);
}

void fill(Tensor& t, float value) {
  if (detail::on_cuda(t, "fill")) {
    detail::check_f32_on(t, t.device(), "tensor");
    if constexpr (detail::kWithCuda) cuda::fill(t.data<float>(), value, t.numel());
    return;
  }
  check_f32_cpu(t, "tensor");
  cpu::fill(t.data<float>(), value, t.numel());
}

void add_inplace(Tensor& y, const Tensor& x) {
  if (detail::on_cuda(y, "add_inplace") && x.dtype() == DType::bf16) {
    detail::check_f32_on(y, y.device(), "y");
    detail::check_on(x, y.device(), "x");
    check_same_numel(y, x, "add_inplace");
    if constexpr (detail::kWithCuda) cuda::add_bf16(y.data<float>(), x.data<uint16_t>(), y.numel());
    return;
  }
  if (x.dtype() != DType::bf16) return axpy(y, 1.f, x);
  check_f32_cpu(y, "y");
  check_same_numel(y, x, "add_inplace");
  float* d = y.data<float>();
  const uint16_t* s = x.data<uint16_t>();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) d[i] += bf16_to_f32(s[i]);
}

void axpy(Tensor& y, float a, const Tensor& x) {
  if (detail::on_cuda(y, "axpy")) {
    detail::check_f32_on(y, y.device(), "y");
    detail::check_f32_on(x, y.device(), "x");
    check_same_numel(y, x, "axpy");
    if constexpr (detail::kWithCuda) cuda::axpy(y.data<float>(), a, x.data<float>(), y.numel());
    return;
  }
  check_f32_cpu(y, "y");
  check_f32_cpu(x, "x");
  check_same_numel(y, x, "axpy");
  cpu::axpy(y.data<float>(), a, x.data<float>(), y.numel());
}

void scale_inplace(Tensor& x, float s) {
  if (detail::on_cuda(x, "scale_inplace")) {
    detail::check_f32_on(x, x.device(), "x");
    if constexpr (detail::kWithCuda) cuda::scale(x.data<float>(), s, x.numel());
    return;
  }
  check_f32_cpu(x, "x");
  cpu::scale(x.data<float>(), s, x.numel());
}

double sum_squares(const Tensor& x) {
  if (detail::on_cuda(x, "sum_squares")) {
    detail::check_f32_on(x, x.device(), "x");
    if constexpr (detail::kWithCuda) {
      Tensor scratch = Tensor::empty({cuda::kSumSquaresScratch}, DType::f64, MemTag::workspace, x.device());
      return cuda::sum_squares(x.data<float>(), x.numel(), scratch.data<double>());
    }
    return 0.0;
  }
  check_f32_cpu(x, "x");
  return cpu::sum_squares(x.data<float>(), x.numel());
}

namespace {
void sum_accumulate_impl(Tensor& total, const Tensor& x, bool square, const char* what) {
  ZT_CHECK(total.defined() && total.dtype() == DType::f64 && total.numel() == 1, "{}: total must be one f64", what);
  if (detail::on_cuda(total, what)) {
    detail::check_f32_on(x, total.device(), "x");
    if constexpr (detail::kWithCuda) {
      Tensor scratch = Tensor::empty({cuda::kSumSquaresScratch}, DType::f64, MemTag::workspace, x.device());
      cuda::sum_accumulate(total.data<double>(), x.data<float>(), x.numel(), square, scratch.data<double>());
    }
    return;
  }
  check_f32_cpu(x, "x");
  if (square) {
    total.data<double>()[0] += cpu::sum_squares(x.data<float>(), x.numel());
    return;
  }
  const float* p = x.data<float>();
  double sum = 0;
  for (int64_t i = 0; i < x.numel(); ++i) sum += p[i];  // serial: the order is fixed
  total.data<double>()[0] += sum;
}
}  // namespace

void sum_accumulate(Tensor& total, const Tensor& x) { sum_accumulate_impl(total, x, false, "sum_accumulate"); }
void sum_squares_accumulate(Tensor& total, const Tensor& x) {
  sum_accumulate_impl(total, x, true, "sum_squares_accumulate");
}

void convert(Tensor& dst, const Tensor& src) {
  if (detail::on_cuda(dst, "convert")) {
    detail::check_float_on(dst, dst.device(), "convert dst");
    detail::check_float_on(src, dst.device(), "convert src");
    check_same_numel(dst, src, "convert");
    if constexpr (detail::kWithCuda)
      cuda::convert(dst.raw(), detail::elem_of(dst), src.raw(), detail::elem_of(src), src.numel());
    return;
  }
  ZT_CHECK(dst.defined() && src.defined() && dst.device().is_cpu() && src.device().is_cpu(),
           "convert needs defined CPU tensors");
  check_same_numel(dst, src, "convert");
  const int64_t n = src.numel();
  const DType from = src.dtype(), to = dst.dtype();
  if (from == to) {
    dst.copy_from(src);
    return;
  }
  if (to == DType::f32 && (from == DType::bf16 || from == DType::f16)) {
    const uint16_t* s = src.data<uint16_t>();
    float* d = dst.data<float>();
    if (from == DType::bf16) {
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
    } else {
      cpu::from_f16(d, s, n);
    }
    return;
  }
  if (from == DType::f32 && (to == DType::bf16 || to == DType::f16)) {
    const float* s = src.data<float>();
    uint16_t* d = dst.data<uint16_t>();
    if (to == DType::bf16) {
      // 16 lanes: GCC would take 32 on AVX-512 (two f32 vectors packed by a permute), 35%
      // slower than one narrowing move per 16 (16.8 -> 12.4 us per 128K values, Zen 5); AVX2
      // code takes 16 anyway.
#pragma omp parallel for simd simdlen(16) schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
    } else {
      cpu::to_f16(d, s, n);
    }
    return;
  }
  if ((from == DType::bf16 && to == DType::f16) || (from == DType::f16 && to == DType::bf16)) {
    // Through f32, which holds every value of both exactly: one rounding, to the target.
    const uint16_t* s = src.data<uint16_t>();
    uint16_t* d = dst.data<uint16_t>();
    if (from == DType::bf16) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(bf16_to_f32(s[i]));
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(f16_to_f32(s[i]));
    }
    return;
  }
  ZT_CHECK(false, "no conversion from {} to {}", dtype_name(from), dtype_name(to));
}

namespace {
void check_compute_copy(const Tensor* compute, const Tensor& param) {
  if (!compute) return;
  ZT_CHECK(compute->defined() && compute->device() == param.device() &&
               (compute->dtype() == DType::bf16 || compute->dtype() == DType::f16),
           "the compute copy an update writes must be a bf16 or f16 tensor on the param's device");
  check_same_numel(param, *compute, "update compute copy");
}
// The CPU update's compute copy (checked by check_compute_copy).
cpu::ComputeOut compute_out(Tensor* compute) {
  if (!compute) return {};
  if (compute->dtype() == DType::bf16) return {detail::bf16_data(*compute), nullptr};
  return {nullptr, compute->data<uint16_t>()};
}
}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s, Tensor* compute) {
  check_compute_copy(compute, param);
  if (detail::on_cuda(param, "adamw_update")) {
    for (const Tensor* t : detail::TensorList{&param, &grad, &m, &v}) detail::check_f32_on(*t, param.device(), "adamw tensor");
    check_same_numel(param, grad, "adamw grad");
    check_same_numel(param, m, "adamw m");
    check_same_numel(param, v, "adamw v");
    ZT_CHECK(s.step >= 1, "AdamW step count starts at 1, got {}", s.step);
    if constexpr (detail::kWithCuda)
      cuda::adamw_update(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), param.numel(),
                         s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.step, s.grad_scale);
    if (compute) convert(*compute, param);
    return;
  }
  check_f32_cpu(param, "param");
  check_same_numel(param, grad, "adamw grad");
  check_same_numel(param, m, "adamw m");
  check_same_numel(param, v, "adamw v");
  ZT_CHECK(s.step >= 1, "AdamW step count starts at 1, got {}", s.step);
  cpu::adamw_update(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), param.numel(), s.lr,
                    s.beta1, s.beta2, s.eps, s.weight_decay, s.step, s.grad_scale, compute_out(compute));
}

void sgd_update(Tensor& param, const Tensor& grad, Tensor* momentum_buf, const SgdStep& s, Tensor* compute) {
  check_compute_copy(compute, param);
  if (detail::on_cuda(param, "sgd_update")) {
    detail::check_f32_on(param, param.device(), "param");
    detail::check_f32_on(grad, param.device(), "grad");
    check_same_numel(param, grad, "sgd grad");
    if (momentum_buf) {
      detail::check_f32_on(*momentum_buf, param.device(), "momentum");
      check_same_numel(param, *momentum_buf, "sgd momentum");
    }
    if constexpr (detail::kWithCuda)
      cuda::sgd_update(param.data<float>(), grad.data<float>(), detail::f32_or_null(momentum_buf), param.numel(),
                       s.lr, s.momentum, s.weight_decay, s.grad_scale);
    if (compute) convert(*compute, param);
    return;
  }
  check_f32_cpu(param, "param");
  check_same_numel(param, grad, "sgd grad");
  if (momentum_buf) check_same_numel(param, *momentum_buf, "sgd momentum");
  cpu::sgd_update(param.data<float>(), grad.data<float>(),
                  momentum_buf ? momentum_buf->data<float>() : nullptr, param.numel(), s.lr,
                  s.momentum, s.weight_decay, s.grad_scale, compute_out(compute));
}

}  // namespace zt
