#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/math/activation.h"

// The per-element math is core/math/activation.h, shared with the CUDA kernels.
namespace zt::cpu {

namespace {

template <typename In, typename Out>
void gelu_forward_impl(Out* out, const In* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    store(out + i, math::gelu(to_f32(inp[i])));
  }
}

template <bool kAccumulate, typename In>
void gelu_backward_impl(float* dinp, const float* dout, const In* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = math::gelu_grad(to_f32(inp[i])) * dout[i];
    dinp[i] = kAccumulate ? dinp[i] + g : g;
  }
}

template <typename In, typename Out>
void swiglu_forward_impl(Out* out, const In* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const In* gate = inp + r * 2 * F;
    const In* up = gate + F;
    Out* y = out + r * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) store(y + i, math::swiglu(to_f32(gate[i]), to_f32(up[i])));
  }
}

template <bool kAccumulate, typename In>
void swiglu_backward_impl(float* dinp, const float* dout, const In* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const In* gate = inp + r * 2 * F;
    const In* up = gate + F;
    const float* dy = dout + r * F;
    float* dgate = dinp + r * 2 * F;
    float* dup = dgate + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      float dg, du;
      math::swiglu_grad(to_f32(gate[i]), to_f32(up[i]), dy[i], dg, du);
      dup[i] = kAccumulate ? dup[i] + du : du;
      dgate[i] = kAccumulate ? dgate[i] + dg : dg;
    }
  }
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) { gelu_forward_impl(out, inp, n); }
void gelu_forward(Bf16* out, const Bf16* inp, int64_t n) { gelu_forward_impl(out, inp, n); }
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate) {
  accumulate ? gelu_backward_impl<true>(dinp, dout, inp, n) : gelu_backward_impl<false>(dinp, dout, inp, n);
}
void gelu_backward(float* dinp, const float* dout, const Bf16* inp, int64_t n, bool accumulate) {
  accumulate ? gelu_backward_impl<true>(dinp, dout, inp, n) : gelu_backward_impl<false>(dinp, dout, inp, n);
}
void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F) { swiglu_forward_impl(out, inp, N, F); }
void swiglu_forward(Bf16* out, const Bf16* inp, int64_t N, int64_t F) { swiglu_forward_impl(out, inp, N, F); }
void swiglu_backward(float* dinp, const float* dout, const float* inp, int64_t N, int64_t F, bool accumulate) {
  accumulate ? swiglu_backward_impl<true>(dinp, dout, inp, N, F) : swiglu_backward_impl<false>(dinp, dout, inp, N, F);
}
void swiglu_backward(float* dinp, const float* dout, const Bf16* inp, int64_t N, int64_t F, bool accumulate) {
  accumulate ? swiglu_backward_impl<true>(dinp, dout, inp, N, F) : swiglu_backward_impl<false>(dinp, dout, inp, N, F);
}

}  // namespace zt::cpu
