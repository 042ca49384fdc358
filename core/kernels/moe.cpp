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
// idx (N,K) against a (N,E) tensor: returns K.
int64_t check_choices(const Tensor& idx, const Tensor& probs, const char* what) {
  check_i32_cpu(idx, "moe idx");
  check_f32_cpu(probs, "moe probs");
  ZT_CHECK(rows(idx) == rows(probs) && cols(idx) <= cols(probs), "{}: idx {} probs {}", what, idx.shape_str(),
           probs.shape_str());
  return cols(idx);
}

// slots (N,K) into (M,C) rows: every slot in range.
void check_slots(const Tensor& slots, int64_t M, const char* what) {
  check_i32_cpu(slots, "moe slots");
  const int32_t* s = slots.data<int32_t>();
  for (int64_t i = 0; i < slots.numel(); ++i) ZT_CHECK(s[i] >= 0 && s[i] < M, "{}: slot {} of {} rows", what, s[i], M);
}
}  // namespace

void moe_router_forward(Tensor& probs, Tensor& idx, Tensor& weights, const Tensor& logits, bool normalize) {
  if (detail::on_cuda(probs, "moe_router_forward")) detail::no_cuda_kernel("moe_router_forward");
  check_f32_cpu(logits, "router logits");
  check_f32_cpu(weights, "router weights");
  const int64_t N = rows(logits), E = cols(logits), K = check_choices(idx, probs, "moe_router_forward");
  ZT_CHECK(probs.numel() == N * E && rows(idx) == N && weights.numel() == N * K && K >= 1,
           "moe_router_forward: logits {} probs {} idx {} weights {}", logits.shape_str(), probs.shape_str(),
           idx.shape_str(), weights.shape_str());
  cpu::moe_router_forward(probs.data<float>(), idx.data<int32_t>(), weights.data<float>(), logits.data<float>(), N, E,
                          K, normalize);
}

void moe_router_backward(Tensor& dlogits, const Tensor* dprobs, const Tensor& dweights, const Tensor& probs,
                         const Tensor& idx, bool normalize) {
  if (detail::on_cuda(dlogits, "moe_router_backward")) detail::no_cuda_kernel("moe_router_backward");
  check_f32_cpu(dlogits, "router dlogits");
  check_f32_cpu(dweights, "router dweights");
  const int64_t N = rows(probs), E = cols(probs), K = check_choices(idx, probs, "moe_router_backward");
  ZT_CHECK(dlogits.numel() == N * E && dweights.numel() == N * K, "moe_router_backward: dlogits {} dweights {}",
           dlogits.shape_str(), dweights.shape_str());
  if (dprobs) {
    check_f32_cpu(*dprobs, "router dprobs");
    detail::check_same_numel(*dprobs, probs, "moe_router_backward dprobs");
  }
  cpu::moe_router_backward(dlogits.data<float>(), dprobs ? dprobs->data<float>() : nullptr, dweights.data<float>(),
                           probs.data<float>(), idx.data<int32_t>(), N, E, K, normalize);
}

void moe_dispatch(Tensor& rows_out, Tensor& slots, std::vector<int64_t>& offsets, const Tensor& idx,
                  int64_t n_experts) {
  if (detail::on_cuda(idx, "moe_dispatch")) detail::no_cuda_kernel("moe_dispatch");
  check_i32_cpu(idx, "moe idx");
  check_i32_cpu(rows_out, "moe rows");
  check_i32_cpu(slots, "moe slots");
  const int64_t N = rows(idx), K = cols(idx);
  ZT_CHECK(rows_out.numel() == N * K && slots.numel() == N * K, "moe_dispatch: idx {} rows {} slots {}",
           idx.shape_str(), rows_out.shape_str(), slots.shape_str());
  const int32_t* ix = idx.data<int32_t>();
  for (int64_t i = 0; i < N * K; ++i)
    ZT_CHECK(ix[i] >= 0 && ix[i] < n_experts, "moe_dispatch: expert {} of {}", ix[i], n_experts);
  offsets.assign(n_experts + 1, 0);
  cpu::moe_dispatch(rows_out.data<int32_t>(), slots.data<int32_t>(), offsets.data(), ix, N, n_experts, K);
}

void moe_aux_loss_forward(Tensor& aux, const Tensor& probs, const Tensor& idx, int64_t T) {
  if (detail::on_cuda(aux, "moe_aux_loss_forward")) detail::no_cuda_kernel("moe_aux_loss_forward");
  check_f32_cpu(aux, "moe aux");
  const int64_t K = check_choices(idx, probs, "moe_aux_loss_forward"), N = rows(probs), E = cols(probs);
  ZT_CHECK(T > 0 && N % T == 0 && aux.numel() == N / T, "moe_aux_loss_forward: probs {} aux {} T {}",
           probs.shape_str(), aux.shape_str(), T);
  cpu::moe_aux_loss_forward(aux.data<float>(), probs.data<float>(), idx.data<int32_t>(), N / T, T, E, K);
}

void moe_aux_loss_backward(Tensor& dprobs, const Tensor& idx, int64_t T, float scale) {
  if (detail::on_cuda(dprobs, "moe_aux_loss_backward")) detail::no_cuda_kernel("moe_aux_loss_backward");
  const int64_t K = check_choices(idx, dprobs, "moe_aux_loss_backward"), N = rows(dprobs), E = cols(dprobs);
  ZT_CHECK(T > 0 && N % T == 0, "moe_aux_loss_backward: dprobs {} T {}", dprobs.shape_str(), T);
  cpu::moe_aux_loss_backward(dprobs.data<float>(), idx.data<int32_t>(), N / T, T, E, K, scale);
}

void gather_rows(Tensor& out, const Tensor& inp, const Tensor& rows_idx) {
  if (detail::on_cuda(out, "gather_rows")) detail::no_cuda_kernel("gather_rows");
  detail::check_float_cpu(inp, "gather_rows inp");
  check_i32_cpu(rows_idx, "gather_rows rows");
  const int64_t N = rows(inp), C = cols(inp), M = rows_idx.numel();
  ZT_CHECK(out.dtype() == inp.dtype() && rows(out) == M && cols(out) == C, "gather_rows: inp {} {} out {} {} rows {}",
           inp.shape_str(), dtype_name(inp.dtype()), out.shape_str(), dtype_name(out.dtype()), M);
  check_slots(rows_idx, N, "gather_rows");
  cpu::gather_rows(out.raw(), inp.raw(), rows_idx.data<int32_t>(), M,
                   C * static_cast<int64_t>(dtype_size(inp.dtype())));
}

void combine_rows(Tensor& out, const Tensor& inp, const Tensor& slots, const Tensor* weights) {
  if (detail::on_cuda(out, "combine_rows")) detail::no_cuda_kernel("combine_rows");
  check_f32_cpu(out, "combine out");
  check_f32_cpu(inp, "combine inp");
  const int64_t N = rows(out), C = cols(out), K = cols(slots);
  ZT_CHECK(cols(inp) == C && rows(slots) == N, "combine_rows: out {} inp {} slots {}", out.shape_str(),
           inp.shape_str(), slots.shape_str());
  if (weights) {
    check_f32_cpu(*weights, "combine weights");
    detail::check_same_numel(*weights, slots, "combine_rows weights");
  }
  check_slots(slots, rows(inp), "combine_rows");
  cpu::combine_rows(out.data<float>(), inp.data<float>(), slots.data<int32_t>(),
                    weights ? weights->data<float>() : nullptr, N, K, C);
}

void combine_rows_backward(Tensor& dinp, Tensor& dweights, const Tensor& dout, const Tensor& inp,
                           const Tensor& slots, const Tensor& weights) {
  if (detail::on_cuda(dinp, "combine_rows_backward")) detail::no_cuda_kernel("combine_rows_backward");
  check_f32_cpu(dinp, "combine dinp");
  check_f32_cpu(dweights, "combine dweights");
  check_f32_cpu(dout, "combine dout");
  check_f32_cpu(inp, "combine inp");
  check_f32_cpu(weights, "combine weights");
  const int64_t N = rows(dout), C = cols(dout), K = cols(slots);
  ZT_CHECK(cols(inp) == C && rows(slots) == N && dweights.numel() == N * K && weights.numel() == N * K,
           "combine_rows_backward: dout {} inp {} slots {} dweights {}", dout.shape_str(), inp.shape_str(),
           slots.shape_str(), dweights.shape_str());
  detail::check_same_numel(dinp, inp, "combine_rows_backward dinp");
  check_slots(slots, rows(inp), "combine_rows_backward");
  cpu::combine_rows_backward(dinp.data<float>(), dweights.data<float>(), dout.data<float>(), inp.data<float>(),
                             slots.data<int32_t>(), weights.data<float>(), N, K, C);
}

}  // namespace zt
