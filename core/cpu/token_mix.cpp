// Kernels of gated attention and of the WorkerTransformer's token mixing: the sigmoid output
// gate, the causal depthwise Conv1d and the gather/scatter of worker rows.
#include <cstring>

#include "core/cpu/ops.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {

// out (n) = inp * sigmoid(gate), elementwise.
void sigmoid_gate_forward(float* out, const float* inp, const float* gate, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * fast_sigmoid(gate[i]);
}

// dinp += dout * s;  dgate += dout * inp * s (1 - s), with s = sigmoid(gate).
void sigmoid_gate_backward(float* dinp, float* dgate, const float* dout, const float* inp,
                           const float* gate, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float s = fast_sigmoid(gate[i]);
    dinp[i] += dout[i] * s;
    dgate[i] += dout[i] * inp[i] * s * (1.f - s);
  }
}

// out (B,T,C)[t,c] = bias[c] + sum_j w (C,K)[c,j] * inp[t-(K-1)+j, c], rows before 0 read as
// zero (PyTorch's Conv1d(groups=C, padding=K-1) with the K-1 trailing outputs dropped).
void causal_conv1d_forward(float* out, const float* inp, const float* w, const float* bias,
                           int64_t B, int64_t T, int64_t C, int64_t K) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      float* y = out + (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) y[c] = bias ? bias[c] : 0.f;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t src = t - (K - 1) + j;
        if (src < 0) continue;
        const float* x = inp + (b * T + src) * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) y[c] += w[c * K + j] * x[c];
      }
    }
}

// dinp += conv^T(dout); dw (C,K) += sum over rows; dbias += colsum(dout). Parallel over
// channel blocks so the weight gradient needs no reduction across threads.
void causal_conv1d_backward(float* dinp, float* dw, float* dbias, const float* dout,
                            const float* inp, const float* w, int64_t B, int64_t T, int64_t C,
                            int64_t K) {
  constexpr int64_t kBlock = 16;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
    const int64_t c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const float* dy = dout + (b * T + t) * C;
        if (dbias)
          for (int64_t c = c0; c < c1; ++c) dbias[c] += dy[c];
        for (int64_t j = 0; j < K; ++j) {
          const int64_t src = t - (K - 1) + j;
          if (src < 0) continue;
          const float* x = inp + (b * T + src) * C;
          float* dx = dinp + (b * T + src) * C;
          for (int64_t c = c0; c < c1; ++c) {
            dw[c * K + j] += dy[c] * x[c];
            dx[c] += dy[c] * w[c * K + j];
          }
        }
      }
  }
}

// Worker rows are t = i*k + k-1 of each sequence: W = T / k of them (rounded down).
void gather_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k) {
  const int64_t W = T / k;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < W; ++i)
      std::memcpy(out + (b * W + i) * C, inp + (b * T + i * k + k - 1) * C, sizeof(float) * C);
}

void scatter_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k) {
  const int64_t W = T / k;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < W; ++i)
      std::memcpy(out + (b * T + i * k + k - 1) * C, inp + (b * W + i) * C, sizeof(float) * C);
}

}  // namespace zt::cpu
