// Mixture of Experts routing kernels: softmax top-k router, dispatch by expert, row gather and
// the weighted combine, and the per-sequence load-balancing loss. Every reduction runs in a
// fixed order (per row, or per sequence), so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu/f64_lanes.h"
#include "core/cpu/ops.h"

namespace zt::cpu {

void moe_router_forward(float* probs, int32_t* idx, float* weights, const float* logits, int64_t N,
                        int64_t E, int64_t K, bool normalize) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* l = logits + n * E;
    float* p = probs + n * E;
    float mx = l[0];
    for (int64_t e = 1; e < E; ++e) mx = std::max(mx, l[e]);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += p[e] = std::exp(l[e] - mx);
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t e = 0; e < E; ++e) p[e] *= inv;
    // Top-k by repeated selection (K is small): the largest not yet taken, the lower index on ties.
    int32_t* ix = idx + n * K;
    float* w = weights + n * K;
    double total = 0;
    for (int64_t j = 0; j < K; ++j) {
      int32_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        if (std::find(ix, ix + j, static_cast<int32_t>(e)) != ix + j) continue;
        if (best < 0 || p[e] > p[best]) best = static_cast<int32_t>(e);
      }
      ix[j] = best;
      w[j] = p[best];
      total += p[best];
    }
    if (normalize)
      for (int64_t j = 0; j < K; ++j) w[j] = static_cast<float>(w[j] / total);
  }
}

void moe_router_backward(float* dlogits, const float* dprobs, const float* dweights, const float* probs,
                         const int32_t* idx, int64_t N, int64_t E, int64_t K, bool normalize) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* p = probs + n * E;
    const int32_t* ix = idx + n * K;
    const float* dw = dweights + n * K;
    std::vector<double> dp(E, 0.0);
    if (dprobs)
      for (int64_t e = 0; e < E; ++e) dp[e] = dprobs[n * E + e];
    if (normalize) {
      // w_j = p_j / Z, Z = sum_j p_j: dp_j = (dw_j - sum_i dw_i w_i) / Z.
      double Z = 0, dot = 0;
      for (int64_t j = 0; j < K; ++j) Z += p[ix[j]];
      for (int64_t j = 0; j < K; ++j) dot += dw[j] * (p[ix[j]] / Z);
      for (int64_t j = 0; j < K; ++j) dp[ix[j]] += (dw[j] - dot) / Z;
    } else {
      for (int64_t j = 0; j < K; ++j) dp[ix[j]] += dw[j];
    }
    double pdp = 0;
    for (int64_t e = 0; e < E; ++e) pdp += p[e] * dp[e];
    for (int64_t e = 0; e < E; ++e) dlogits[n * E + e] += static_cast<float>(p[e] * (dp[e] - pdp));
  }
}

void moe_dispatch(int32_t* rows, int32_t* slots, int64_t* offsets, const int32_t* idx, int64_t N, int64_t E,
                  int64_t K) {
  // Counting sort of the N*K slots by expert, stable in (token, choice) order.
  std::fill(offsets, offsets + E + 1, 0);
  for (int64_t i = 0; i < N * K; ++i) ++offsets[idx[i] + 1];
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  std::vector<int64_t> next(offsets, offsets + E);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j) {
      const int64_t at = next[idx[n * K + j]]++;
      rows[at] = static_cast<int32_t>(n);
      slots[n * K + j] = static_cast<int32_t>(at);
    }
}

void moe_aux_loss_forward(float* aux, const float* probs, const int32_t* idx, int64_t B, int64_t T, int64_t E,
                          int64_t K) {
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> count(E, 0.0), mean_p(E, 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      for (int64_t j = 0; j < K; ++j) count[idx[n * K + j]] += 1;
      for (int64_t e = 0; e < E; ++e) mean_p[e] += probs[n * E + e];
    }
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (count[e] / static_cast<double>(T * K)) * (mean_p[e] / static_cast<double>(T));
    aux[b] = static_cast<float>(static_cast<double>(E) * sum);
  }
}

void moe_aux_loss_backward(float* dprobs, const int32_t* idx, int64_t B, int64_t T, int64_t E, int64_t K,
                           float scale) {
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> count(E, 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j) count[idx[(b * T + t) * K + j]] += 1;
    // d(E sum_i f_i P_i) / d p[t,i] = E f_i / T.
    for (int64_t e = 0; e < E; ++e) {
      const float g = static_cast<float>(scale * E * (count[e] / static_cast<double>(T * K)) / static_cast<double>(T));
      for (int64_t t = 0; t < T; ++t) dprobs[(b * T + t) * E + e] += g;
    }
  }
}

void gather_rows(void* out, const void* inp, const int32_t* rows, int64_t M, int64_t row_bytes) {
  auto* o = static_cast<char*>(out);
  const auto* in = static_cast<const char*>(inp);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) std::memcpy(o + m * row_bytes, in + rows[m] * row_bytes, row_bytes);
}

void combine_rows(float* out, const float* inp, const int32_t* slots, const float* weights, int64_t N, int64_t K,
                  int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* o = out + n * C;
    for (int64_t j = 0; j < K; ++j) {
      const float* r = inp + static_cast<int64_t>(slots[n * K + j]) * C;
      const float w = weights ? weights[n * K + j] : 1.f;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += w * r[c];
    }
  }
}

void combine_rows_backward(float* dinp, float* dweights, const float* dout, const float* inp, const int32_t* slots,
                           const float* weights, int64_t N, int64_t K, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* d = dout + n * C;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t s = slots[n * K + j];
      float* di = dinp + s * C;
      const float w = weights[n * K + j];
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) di[c] += w * d[c];
      // The f64 dot in lanes: one chain was 7% of configs/tiny-moe.yaml's step.
      dweights[n * K + j] += static_cast<float>(dot_f64(d, inp + s * C, C));
    }
  }
}

}  // namespace zt::cpu
