// Tensor-level kernels of gated attention and WorkerTransformer token mixing: check shapes,
// widen low-precision activations, dispatch to core/cpu/token_mix.cpp.
#include "core/cpu/ops.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {

using detail::check_f32_cpu;
using detail::cols;
using detail::rows;

void sigmoid_gate_forward(Tensor& out, const Tensor& inp, const Tensor& gate) {
  if (detail::on_cuda(out, "sigmoid_gate_forward")) {
    for (const Tensor* t : detail::TensorList{&out, &inp, &gate}) detail::check_float_on(*t, out.device(), "sigmoid gate tensor");
    detail::check_same_numel(out, inp, "sigmoid gate out");
    detail::check_same_numel(gate, inp, "sigmoid gate");
    if constexpr (detail::kWithCuda)
      cuda::sigmoid_gate_forward(out.raw(), detail::elem_of(out), inp.raw(), detail::elem_of(inp), gate.raw(),
                                 detail::elem_of(gate), inp.numel());
    return;
  }
  const detail::F32Input in(inp, "gate inp");
  const detail::F32Input g(gate, "gate pre-activation");
  detail::F32Output o(out, "gate out");
  detail::check_same_numel(out, inp, "sigmoid gate out");
  detail::check_same_numel(gate, inp, "sigmoid gate");
  cpu::sigmoid_gate_forward(o.data(), in.data(), g.data(), inp.numel());
  o.store();
}

void sigmoid_gate_backward(Tensor& dinp, Tensor& dgate, const Tensor& dout, const Tensor& inp,
                           const Tensor& gate) {
  if (detail::on_cuda(dinp, "sigmoid_gate_backward")) {
    for (const Tensor* t : detail::TensorList{&dinp, &dgate, &dout}) detail::check_f32_on(*t, dinp.device(), "sigmoid gate gradient");
    for (const Tensor* t : detail::TensorList{&inp, &gate}) detail::check_float_on(*t, dinp.device(), "sigmoid gate input");
    for (const Tensor* t : detail::TensorList{&dinp, &dgate, &dout, &gate}) detail::check_same_numel(*t, inp, "sigmoid gate backward");
    if constexpr (detail::kWithCuda)
      cuda::sigmoid_gate_backward(dinp.data<float>(), dgate.data<float>(), dout.data<float>(), inp.raw(),
                                  detail::elem_of(inp), gate.raw(), detail::elem_of(gate), inp.numel());
    return;
  }
  check_f32_cpu(dinp, "gate dinp");
  check_f32_cpu(dgate, "gate dgate");
  check_f32_cpu(dout, "gate dout");
  const detail::F32Input in(inp, "gate backward inp");
  const detail::F32Input g(gate, "gate backward pre-activation");
  detail::check_same_numel(dinp, inp, "sigmoid gate dinp");
  detail::check_same_numel(dgate, inp, "sigmoid gate dgate");
  detail::check_same_numel(dout, inp, "sigmoid gate dout");
  detail::check_same_numel(gate, inp, "sigmoid gate backward");
  cpu::sigmoid_gate_backward(dinp.data<float>(), dgate.data<float>(), dout.data<float>(), in.data(), g.data(),
                             inp.numel());
}

namespace {
// (C, 1, K) or (C, K): the depthwise weight; returns K.
int64_t conv_width(const Tensor& weight, int64_t C) {
  ZT_CHECK(weight.ndim() >= 2 && weight.dim(0) == C && weight.numel() % C == 0, "conv weight {} for {} channels",
           weight.shape_str(), C);
  return weight.numel() / C;
}
}  // namespace

void causal_conv1d_forward(Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias,
                           int64_t T) {
  if (detail::on_cuda(out, "causal_conv1d_forward")) {
    const Device dev = out.device();
    detail::check_float_on(inp, dev, "conv inp");
    detail::check_f32_on(out, dev, "conv out");
    detail::check_f32_on(weight, dev, "conv weight");
    const int64_t N = rows(inp), C = cols(inp), K = conv_width(weight, C);
    ZT_CHECK(T > 0 && N % T == 0 && out.numel() == N * C, "conv: inp {} out {} T {}", inp.shape_str(),
             out.shape_str(), T);
    if (bias) {
      detail::check_f32_on(*bias, dev, "conv bias");
      ZT_CHECK(bias->numel() == C, "conv bias {}", bias->shape_str());
    }
    if constexpr (detail::kWithCuda)
      cuda::causal_conv1d_forward(out.data<float>(), inp.raw(), detail::elem_of(inp), weight.data<float>(),
                                  detail::f32_or_null(bias), N / T, T, C, K);
    return;
  }
  const detail::F32Input in(inp, "conv inp");
  check_f32_cpu(out, "conv out");
  check_f32_cpu(weight, "conv weight");
  const int64_t N = rows(inp), C = cols(inp), K = conv_width(weight, C);
  ZT_CHECK(T > 0 && N % T == 0 && out.numel() == N * C, "conv: inp {} out {} T {}", inp.shape_str(),
           out.shape_str(), T);
  if (bias) {
    check_f32_cpu(*bias, "conv bias");
    ZT_CHECK(bias->numel() == C, "conv bias {}", bias->shape_str());
  }
  cpu::causal_conv1d_forward(out.data<float>(), in.data(), weight.data<float>(), bias ? bias->data<float>() : nullptr,
                             N / T, T, C, K);
}

void causal_conv1d_backward(Tensor& dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                            const Tensor& inp, const Tensor& weight, int64_t T) {
  if (detail::on_cuda(dinp, "causal_conv1d_backward")) {
    const Device dev = dinp.device();
    detail::check_float_on(inp, dev, "conv backward inp");
    for (const Tensor* t : detail::TensorList{&dinp, &dweight, &dout, &weight, dbias})
      if (t) detail::check_f32_on(*t, dev, "conv backward tensor");
    const int64_t N = rows(inp), C = cols(inp), K = conv_width(weight, C);
    ZT_CHECK(T > 0 && N % T == 0 && dinp.numel() == N * C && dout.numel() == N * C && dweight.numel() == C * K &&
                 (!dbias || dbias->numel() == C),
             "conv backward: inp {} dout {} dweight {} T {}", inp.shape_str(), dout.shape_str(), dweight.shape_str(),
             T);
    if constexpr (detail::kWithCuda)
      cuda::causal_conv1d_backward(dinp.data<float>(), dweight.data<float>(), detail::f32_or_null(dbias),
                                   dout.data<float>(), inp.raw(), detail::elem_of(inp), weight.data<float>(), N / T, T,
                                   C, K);
    return;
  }
  const detail::F32Input in(inp, "conv backward inp");
  check_f32_cpu(dinp, "conv dinp");
  check_f32_cpu(dweight, "conv dweight");
  check_f32_cpu(dout, "conv dout");
  check_f32_cpu(weight, "conv weight");
  const int64_t N = rows(inp), C = cols(inp), K = conv_width(weight, C);
  ZT_CHECK(T > 0 && N % T == 0 && dinp.numel() == N * C && dout.numel() == N * C && dweight.numel() == C * K,
           "conv backward: inp {} dout {} dweight {} T {}", inp.shape_str(), dout.shape_str(), dweight.shape_str(), T);
  if (dbias) {
    check_f32_cpu(*dbias, "conv dbias");
    ZT_CHECK(dbias->numel() == C, "conv dbias {}", dbias->shape_str());
  }
  cpu::causal_conv1d_backward(dinp.data<float>(), dweight.data<float>(), dbias ? dbias->data<float>() : nullptr,
                              dout.data<float>(), in.data(), weight.data<float>(), N / T, T, C, K);
}

namespace {
// Returns true when the tensors are on a CUDA device.
bool check_worker_rows(const Tensor& full, const Tensor& workers, int64_t T, int64_t k, const char* what) {
  const bool device = detail::on_cuda(full, what);
  if (device) {
    detail::check_f32_on(full, full.device(), what);
    detail::check_f32_on(workers, full.device(), what);
  } else {
    check_f32_cpu(full, what);
    check_f32_cpu(workers, what);
  }
  const int64_t N = rows(full), C = cols(full);
  ZT_CHECK(T > 0 && k > 0 && N % T == 0 && workers.numel() == N / T * (T / k) * C,
           "{}: full {} workers {} T {} interval {}", what, full.shape_str(), workers.shape_str(), T, k);
  return device;
}
}  // namespace

void gather_worker_rows(Tensor& out, const Tensor& inp, int64_t T, int64_t interval) {
  if (check_worker_rows(inp, out, T, interval, "gather_worker_rows")) {
    if constexpr (detail::kWithCuda)
      cuda::gather_worker_rows(out.data<float>(), inp.data<float>(), rows(inp) / T, T, cols(inp), interval);
    return;
  }
  cpu::gather_worker_rows(out.data<float>(), inp.data<float>(), rows(inp) / T, T, cols(inp), interval);
}

void scatter_worker_rows(Tensor& out, const Tensor& inp, int64_t T, int64_t interval) {
  if (check_worker_rows(out, inp, T, interval, "scatter_worker_rows")) {
    if constexpr (detail::kWithCuda)
      cuda::scatter_worker_rows(out.data<float>(), inp.data<float>(), rows(out) / T, T, cols(out), interval);
    return;
  }
  cpu::scatter_worker_rows(out.data<float>(), inp.data<float>(), rows(out) / T, T, cols(out), interval);
}

}  // namespace zt
