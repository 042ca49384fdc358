// Tensor-level Mixture of Experts routing kernels: check shapes, dispatch to core/cpu/moe.cpp.
#include "core/cpu/ops.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {

using detail::check_f32_cpu;
using detail::check_i32_cpu;
using detail::cols;
using detail::rows;

namespace {
// The kernel runs where its first tensor is: a CUDA device (made current) or the CPU.
Device device_of(const Tensor& first, const char* kernel) {
  return detail::on_cuda(first, kernel) ? first.device() : Device::cpu();
}
void check_f32(const Tensor& t, const Device& d, const char* what) {
  d.is_cpu() ? check_f32_cpu(t, what) : detail::check_f32_on(t, d, what);
}
void check_i32(const Tensor& t, const Device& d, const char* what) {
  d.is_cpu() ? check_i32_cpu(t, what) : detail::check_i32_on(t, d, what);
}

// idx (N,K) against a (N,E) tensor: returns K.
int64_t check_choices(const Tensor& idx, const Tensor& probs, const char* what, const Device& d = Device::cpu()) {
  check_i32(idx, d, "moe idx");
  check_f32(probs, d, "moe probs");
  ZT_CHECK(rows(idx) == rows(probs) && cols(idx) <= cols(probs), "{}: idx {} probs {}", what, idx.shape_str(),
           probs.shape_str());
  return cols(idx);
}

// slots (N,K) into (M,C) rows: every slot in range. On a device the kernels guard the range
// instead (a NaN result, not a stray read): reading the slots here would cost a copy and a wait.
void check_slots(const Tensor& slots, int64_t M, const char* what, const Device& d = Device::cpu()) {
  check_i32(slots, d, "moe slots");
  if (!d.is_cpu()) return;
  const int32_t* s = slots.data<int32_t>();
  for (int64_t i = 0; i < slots.numel(); ++i) ZT_CHECK(s[i] >= 0 && s[i] < M, "{}: slot {} of {} rows", what, s[i], M);
}
}  // namespace

void moe_router_forward(Tensor& probs, Tensor& idx, Tensor& weights, const Tensor& logits, bool normalize) {
  const Device dev = device_of(probs, "moe_router_forward");
  check_f32(logits, dev, "router logits");
  check_f32(weights, dev, "router weights");
  const int64_t N = rows(logits), E = cols(logits), K = check_choices(idx, probs, "moe_router_forward", dev);
  ZT_CHECK(probs.numel() == N * E && rows(idx) == N && weights.numel() == N * K && K >= 1,
           "moe_router_forward: logits {} probs {} idx {} weights {}", logits.shape_str(), probs.shape_str(),
           idx.shape_str(), weights.shape_str());
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::moe_router_forward(probs.data<float>(), idx.data<int32_t>(), weights.data<float>(), logits.data<float>(), N,
                               E, K, normalize);
    return;
  }
  cpu::moe_router_forward(probs.data<float>(), idx.data<int32_t>(), weights.data<float>(), logits.data<float>(), N, E,
                          K, normalize);
}

void moe_router_backward(Tensor& dlogits, const Tensor* dprobs, const Tensor& dweights, const Tensor& probs,
                         const Tensor& idx, bool normalize) {
  const Device dev = device_of(dlogits, "moe_router_backward");
  check_f32(dlogits, dev, "router dlogits");
  check_f32(dweights, dev, "router dweights");
  const int64_t N = rows(probs), E = cols(probs), K = check_choices(idx, probs, "moe_router_backward", dev);
  ZT_CHECK(dlogits.numel() == N * E && dweights.numel() == N * K, "moe_router_backward: dlogits {} dweights {}",
           dlogits.shape_str(), dweights.shape_str());
  if (dprobs) {
    check_f32(*dprobs, dev, "router dprobs");
    detail::check_same_numel(*dprobs, probs, "moe_router_backward dprobs");
  }
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::moe_router_backward(dlogits.data<float>(), dprobs ? dprobs->data<float>() : nullptr,
                                dweights.data<float>(), probs.data<float>(), idx.data<int32_t>(), N, E, K, normalize);
    return;
  }
  cpu::moe_router_backward(dlogits.data<float>(), dprobs ? dprobs->data<float>() : nullptr, dweights.data<float>(),
                           probs.data<float>(), idx.data<int32_t>(), N, E, K, normalize);
}

void moe_dispatch(Tensor& rows_out, Tensor& slots, std::vector<int64_t>& offsets, const Tensor& idx,
                  int64_t n_experts) {
  const Device dev = device_of(idx, "moe_dispatch");
  check_i32(idx, dev, "moe idx");
  check_i32(rows_out, dev, "moe rows");
  check_i32(slots, dev, "moe slots");
  const int64_t N = rows(idx), K = cols(idx);
  ZT_CHECK(rows_out.numel() == N * K && slots.numel() == N * K, "moe_dispatch: idx {} rows {} slots {}",
           idx.shape_str(), rows_out.shape_str(), slots.shape_str());
  if (!dev.is_cpu()) {
    // The offsets are host values the caller sizes its expert GEMMs with, so the choices come
    // to the host (one copy and wait), the stable counting sort runs there, and rows and
    // slots go back: N*K ints each way.
    Tensor host_rows = Tensor::empty(rows_out.shape(), DType::i32, MemTag::workspace);
    Tensor host_slots = Tensor::empty(slots.shape(), DType::i32, MemTag::workspace);
    moe_dispatch(host_rows, host_slots, offsets, idx.to(Device::cpu(), MemTag::workspace), n_experts);
    rows_out.copy_from(host_rows);
    slots.copy_from(host_slots);
    return;
  }
  const int32_t* ix = idx.data<int32_t>();
  for (int64_t i = 0; i < N * K; ++i)
    ZT_CHECK(ix[i] >= 0 && ix[i] < n_experts, "moe_dispatch: expert {} of {}", ix[i], n_experts);
  offsets.assign(n_experts + 1, 0);
  cpu::moe_dispatch(rows_out.data<int32_t>(), slots.data<int32_t>(), offsets.data(), ix, N, n_experts, K);
}

void moe_aux_loss_forward(Tensor& aux, const Tensor& probs, const Tensor& idx, int64_t T) {
  const Device dev = device_of(aux, "moe_aux_loss_forward");
  check_f32(aux, dev, "moe aux");
  const int64_t K = check_choices(idx, probs, "moe_aux_loss_forward", dev), N = rows(probs), E = cols(probs);
  ZT_CHECK(T > 0 && N % T == 0 && aux.numel() == N / T, "moe_aux_loss_forward: probs {} aux {} T {}",
           probs.shape_str(), aux.shape_str(), T);
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::moe_aux_loss_forward(aux.data<float>(), probs.data<float>(), idx.data<int32_t>(), N / T, T, E, K);
    return;
  }
  cpu::moe_aux_loss_forward(aux.data<float>(), probs.data<float>(), idx.data<int32_t>(), N / T, T, E, K);
}

void moe_aux_loss_backward(Tensor& dprobs, const Tensor& idx, int64_t T, float scale) {
  const Device dev = device_of(dprobs, "moe_aux_loss_backward");
  const int64_t K = check_choices(idx, dprobs, "moe_aux_loss_backward", dev), N = rows(dprobs), E = cols(dprobs);
  ZT_CHECK(T > 0 && N % T == 0, "moe_aux_loss_backward: dprobs {} T {}", dprobs.shape_str(), T);
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::moe_aux_loss_backward(dprobs.data<float>(), idx.data<int32_t>(), N / T, T, E, K, scale);
    return;
  }
  cpu::moe_aux_loss_backward(dprobs.data<float>(), idx.data<int32_t>(), N / T, T, E, K, scale);
}

void gather_rows(Tensor& out, const Tensor& inp, const Tensor& rows_idx) {
  const Device dev = device_of(out, "gather_rows");
  if (dev.is_cpu())
    detail::check_float_cpu(inp, "gather_rows inp");
  else
    detail::check_float_on(inp, dev, "gather_rows inp");
  check_i32(rows_idx, dev, "gather_rows rows");
  const int64_t N = rows(inp), C = cols(inp), M = rows_idx.numel();
  ZT_CHECK(out.dtype() == inp.dtype() && rows(out) == M && cols(out) == C, "gather_rows: inp {} {} out {} {} rows {}",
           inp.shape_str(), dtype_name(inp.dtype()), out.shape_str(), dtype_name(out.dtype()), M);
  check_slots(rows_idx, N, "gather_rows", dev);
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::gather_rows(out.raw(), inp.raw(), rows_idx.data<int32_t>(), M,
                        C * static_cast<int64_t>(dtype_size(inp.dtype())), N);
    return;
  }
  cpu::gather_rows(out.raw(), inp.raw(), rows_idx.data<int32_t>(), M,
                   C * static_cast<int64_t>(dtype_size(inp.dtype())));
}

void combine_rows(Tensor& out, const Tensor& inp, const Tensor& slots, const Tensor* weights) {
  const Device dev = device_of(out, "combine_rows");
  check_f32(out, dev, "combine out");
  check_f32(inp, dev, "combine inp");
  const int64_t N = rows(out), C = cols(out), K = cols(slots);
  ZT_CHECK(cols(inp) == C && rows(slots) == N, "combine_rows: out {} inp {} slots {}", out.shape_str(),
           inp.shape_str(), slots.shape_str());
  if (weights) {
    check_f32(*weights, dev, "combine weights");
    detail::check_same_numel(*weights, slots, "combine_rows weights");
  }
  check_slots(slots, rows(inp), "combine_rows", dev);
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::combine_rows(out.data<float>(), inp.data<float>(), slots.data<int32_t>(),
                         weights ? weights->data<float>() : nullptr, N, K, C, rows(inp));
    return;
  }
  cpu::combine_rows(out.data<float>(), inp.data<float>(), slots.data<int32_t>(),
                    weights ? weights->data<float>() : nullptr, N, K, C);
}

void combine_rows_backward(Tensor& dinp, Tensor& dweights, const Tensor& dout, const Tensor& inp,
                           const Tensor& slots, const Tensor& weights) {
  const Device dev = device_of(dinp, "combine_rows_backward");
  check_f32(dinp, dev, "combine dinp");
  check_f32(dweights, dev, "combine dweights");
  check_f32(dout, dev, "combine dout");
  check_f32(inp, dev, "combine inp");
  check_f32(weights, dev, "combine weights");
  const int64_t N = rows(dout), C = cols(dout), K = cols(slots);
  ZT_CHECK(cols(inp) == C && rows(slots) == N && dweights.numel() == N * K && weights.numel() == N * K,
           "combine_rows_backward: dout {} inp {} slots {} dweights {}", dout.shape_str(), inp.shape_str(),
           slots.shape_str(), dweights.shape_str());
  detail::check_same_numel(dinp, inp, "combine_rows_backward dinp");
  check_slots(slots, rows(inp), "combine_rows_backward", dev);
  if (!dev.is_cpu()) {
    if constexpr (detail::kWithCuda)
      cuda::combine_rows_backward(dinp.data<float>(), dweights.data<float>(), dout.data<float>(),
                                  inp.data<float>(), slots.data<int32_t>(), weights.data<float>(), N, K, C, rows(inp));
    return;
  }
  cpu::combine_rows_backward(dinp.data<float>(), dweights.data<float>(), dout.data<float>(), inp.data<float>(),
                             slots.data<int32_t>(), weights.data<float>(), N, K, C);
}

}  // namespace zt
