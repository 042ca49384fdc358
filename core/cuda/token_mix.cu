// The WorkerTransformer's causal depthwise Conv1d and the Mixture-of-Experts routing kernels.
// Every sum runs in the CPU kernel's order (per row, per channel or per sequence), so results
// are deterministic and, where the CPU sums in f32 too, equal to its bits.
#include "core/cuda/common.cuh"

namespace zt::cuda {

namespace {
constexpr int kThreads = 256;

// out (B*T, C)[t, c] = bias[c] + sum_j w[c, j] * inp[t - (K-1) + j, c], j ascending.
__global__ void conv_forward_kernel(float* out, const void* inp, Elem inp_type, const float* w, const float* bias,
                                    int64_t B, int64_t T, int64_t C, int64_t K) {
  ZT_GRID_STRIDE(i, B * T * C) {
    const int64_t c = i % C, row = i / C, t = row % T, b = row / T;
    float y = bias ? bias[c] : 0.f;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t src = t - (K - 1) + j;
      if (src >= 0) y += w[c * K + j] * load(inp, (b * T + src) * C + c, inp_type);
    }
    out[i] = y;
  }
}
// dinp[src, c] += dout[t, c] * w[c, j] for t = src + K-1-j, t ascending as on the CPU.
__global__ void conv_backward_dinp_kernel(float* dinp, const float* dout, const float* w, int64_t B, int64_t T,
                                          int64_t C, int64_t K) {
  ZT_GRID_STRIDE(i, B * T * C) {
    const int64_t c = i % C, row = i / C, src = row % T, b = row / T;
    float dx = dinp[i];
    for (int64_t j = K - 1; j >= 0; --j) {
      const int64_t t = src + (K - 1) - j;
      if (t < T) dx += dout[(b * T + t) * C + c] * w[c * K + j];
    }
    dinp[i] = dx;
  }
}
// dw[c, j] += sum over (b, t) in order of dout[t, c] * inp[t - (K-1) + j, c]; j == K: dbias[c].
__global__ void conv_backward_params_kernel(float* dw, float* dbias, const float* dout, const void* inp,
                                            Elem inp_type, int64_t B, int64_t T, int64_t C, int64_t K) {
  ZT_GRID_STRIDE(i, C * (K + 1)) {
    const int64_t c = i / (K + 1), j = i % (K + 1);
    if (j == K && !dbias) continue;
    float acc = j == K ? dbias[c] : dw[c * K + j];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const float dy = dout[(b * T + t) * C + c];
        if (j == K) {
          acc += dy;
        } else {
          const int64_t src = t - (K - 1) + j;
          if (src >= 0) acc += dy * load(inp, (b * T + src) * C + c, inp_type);
        }
      }
    if (j == K)
      dbias[c] = acc;
    else
      dw[c * K + j] = acc;
  }
}

// One thread per row: softmax over E experts (sum in f64), top-K by repeated selection (the
// lower index on ties), weights renormalized when asked.
__global__ void router_forward_kernel(float* probs, int32_t* idx, float* weights, const float* logits, int64_t N,
                                      int64_t E, int64_t K, bool normalize) {
  ZT_GRID_STRIDE(n, N) {
    const float* l = logits + n * E;
    float* p = probs + n * E;
    float mx = l[0];
    for (int64_t e = 1; e < E; ++e) mx = fmaxf(mx, l[e]);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += p[e] = expf(l[e] - mx);
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t e = 0; e < E; ++e) p[e] *= inv;
    int32_t* ix = idx + n * K;
    float* w = weights + n * K;
    double total = 0;
    for (int64_t j = 0; j < K; ++j) {
      int32_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        bool taken = false;
        for (int64_t i = 0; i < j; ++i) taken = taken || ix[i] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = static_cast<int32_t>(e);
      }
      ix[j] = best;
      w[j] = p[best];
      total += p[best];
    }
    if (normalize)
      for (int64_t j = 0; j < K; ++j) w[j] = static_cast<float>(w[j] / total);
  }
}

// One thread per row: dlogits += softmax backward of dp = dprobs + what the weights send back.
__global__ void router_backward_kernel(float* dlogits, const float* dprobs, const float* dweights, const float* probs,
                                       const int32_t* idx, int64_t N, int64_t E, int64_t K, bool normalize) {
  ZT_GRID_STRIDE(n, N) {
    const float* p = probs + n * E;
    const int32_t* ix = idx + n * K;
    const float* dw = dweights + n * K;
    double Z = 0, dot = 0;
    if (normalize) {
      for (int64_t j = 0; j < K; ++j) Z += p[ix[j]];
      for (int64_t j = 0; j < K; ++j) dot += dw[j] * (p[ix[j]] / Z);
    }
    // dp[e] = dprobs[e] + the selected slots' terms, in j order as on the CPU.
    auto dp = [&](int64_t e) {
      double v = dprobs ? dprobs[n * E + e] : 0.0;
      for (int64_t j = 0; j < K; ++j)
        if (ix[j] == e) v += normalize ? (dw[j] - dot) / Z : static_cast<double>(dw[j]);
      return v;
    };
    double pdp = 0;
    for (int64_t e = 0; e < E; ++e) pdp += p[e] * dp(e);
    for (int64_t e = 0; e < E; ++e) dlogits[n * E + e] += static_cast<float>(p[e] * (dp(e) - pdp));
  }
}

// One block per sequence b, one thread per expert: its routed share f_e and mean prob P_e.
__global__ void aux_loss_forward_kernel(float* aux, const float* probs, const int32_t* idx, int64_t T, int64_t E,
                                        int64_t K) {
  __shared__ double scratch[32];
  const int64_t b = blockIdx.x;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    double count = 0, mean_p = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      for (int64_t j = 0; j < K; ++j) count += idx[n * K + j] == e ? 1 : 0;
      mean_p += probs[n * E + e];
    }
    sum += (count / static_cast<double>(T * K)) * (mean_p / static_cast<double>(T));
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) aux[b] = static_cast<float>(static_cast<double>(E) * sum);
}

// One block per sequence, one thread per expert: dprobs[t, e] += scale * E * f_e / T.
__global__ void aux_loss_backward_kernel(float* dprobs, const int32_t* idx, int64_t T, int64_t E, int64_t K,
                                         float scale) {
  const int64_t b = blockIdx.x;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    double count = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j) count += idx[(b * T + t) * K + j] == e ? 1 : 0;
    const float g = static_cast<float>(scale * E * (count / static_cast<double>(T * K)) / static_cast<double>(T));
    for (int64_t t = 0; t < T; ++t) dprobs[(b * T + t) * E + e] += g;
  }
}

// out (M, row) = inp[rows[m]], copied in 2-byte units (every float dtype is a multiple).
__global__ void gather_rows_kernel(uint16_t* out, const uint16_t* inp, const int32_t* rows, int64_t M,
                                   int64_t row_units, int64_t inp_rows) {
  ZT_GRID_STRIDE(i, M * row_units) {
    const int64_t m = i / row_units, u = i % row_units, r = rows[m];
    out[i] = r >= 0 && r < inp_rows ? inp[r * row_units + u] : uint16_t{0xffff};  // all-ones: NaN in every float type
  }
}

// out (N,C)[n, c] += sum_j w[n, j] * inp[slots[n, j], c], j ascending, each term added in turn.
__global__ void combine_rows_kernel(float* out, const float* inp, const int32_t* slots, const float* weights,
                                    int64_t N, int64_t K, int64_t C, int64_t inp_rows) {
  ZT_GRID_STRIDE(i, N * C) {
    const int64_t n = i / C, c = i % C;
    float o = out[i];
    for (int64_t j = 0; j < K; ++j) {
      const int64_t s = slots[n * K + j];
      o += s >= 0 && s < inp_rows ? (weights ? weights[n * K + j] : 1.f) * inp[s * C + c] : NAN;
    }
    out[i] = o;
  }
}

// One block per routed slot (n, j): dinp[slot] += w * dout[n] (each slot is used once, so no
// two blocks write the same row); dweights[n, j] += dout[n] . inp[slot] in f64.
__global__ void combine_rows_backward_kernel(float* dinp, float* dweights, const float* dout, const float* inp,
                                             const int32_t* slots, const float* weights, int64_t K, int64_t C,
                                             int64_t inp_rows) {
  __shared__ double scratch[32];
  const int64_t nj = blockIdx.x, n = nj / K;
  const int64_t s = slots[nj];
  if (s < 0 || s >= inp_rows) {
    if (threadIdx.x == 0) dweights[nj] = NAN;
    return;
  }
  const float w = weights[nj];
  double dot = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = dout[n * C + c];
    dinp[s * C + c] += w * d;
    dot += static_cast<double>(d) * inp[s * C + c];
  }
  dot = block_sum(dot, scratch);
  if (threadIdx.x == 0) dweights[nj] += static_cast<float>(dot);
}
}  // namespace

void causal_conv1d_forward(float* out, const void* inp, Elem inp_type, const float* w, const float* bias, int64_t B,
                           int64_t T, int64_t C, int64_t K) {
  conv_forward_kernel<<<grid_for(B * T * C, kThreads), kThreads, 0, compute_stream()>>>(out, inp, inp_type, w, bias, B,
                                                                                        T, C, K);
  ZT_CUDA_CHECK_LAUNCH(conv_forward_kernel);
}

void causal_conv1d_backward(float* dinp, float* dw, float* dbias, const float* dout, const void* inp, Elem inp_type,
                            const float* w, int64_t B, int64_t T, int64_t C, int64_t K) {
  cudaStream_t stream = compute_stream();
  conv_backward_dinp_kernel<<<grid_for(B * T * C, kThreads), kThreads, 0, stream>>>(dinp, dout, w, B, T, C, K);
  ZT_CUDA_CHECK_LAUNCH(conv_backward_dinp_kernel);
  conv_backward_params_kernel<<<grid_for(C * (K + 1), kThreads), kThreads, 0, stream>>>(dw, dbias, dout, inp,
                                                                                        inp_type, B, T, C, K);
  ZT_CUDA_CHECK_LAUNCH(conv_backward_params_kernel);
}

void moe_router_forward(float* probs, int32_t* idx, float* weights, const float* logits, int64_t N, int64_t E,
                        int64_t K, bool normalize) {
  router_forward_kernel<<<grid_for(N, 128), 128, 0, compute_stream()>>>(probs, idx, weights, logits, N, E, K,
                                                                        normalize);
  ZT_CUDA_CHECK_LAUNCH(router_forward_kernel);
}

void moe_router_backward(float* dlogits, const float* dprobs, const float* dweights, const float* probs,
                         const int32_t* idx, int64_t N, int64_t E, int64_t K, bool normalize) {
  router_backward_kernel<<<grid_for(N, 128), 128, 0, compute_stream()>>>(dlogits, dprobs, dweights, probs, idx, N, E,
                                                                         K, normalize);
  ZT_CUDA_CHECK_LAUNCH(router_backward_kernel);
}

void moe_aux_loss_forward(float* aux, const float* probs, const int32_t* idx, int64_t B, int64_t T, int64_t E,
                          int64_t K) {
  if (B == 0) return;
  aux_loss_forward_kernel<<<static_cast<unsigned>(B), 128, 0, compute_stream()>>>(aux, probs, idx, T, E, K);
  ZT_CUDA_CHECK_LAUNCH(aux_loss_forward_kernel);
}

void moe_aux_loss_backward(float* dprobs, const int32_t* idx, int64_t B, int64_t T, int64_t E, int64_t K,
                           float scale) {
  if (B == 0) return;
  aux_loss_backward_kernel<<<static_cast<unsigned>(B), 128, 0, compute_stream()>>>(dprobs, idx, T, E, K, scale);
  ZT_CUDA_CHECK_LAUNCH(aux_loss_backward_kernel);
}

void gather_rows(void* out, const void* inp, const int32_t* rows, int64_t M, int64_t row_bytes, int64_t inp_rows) {
  const int64_t units = row_bytes / 2;
  gather_rows_kernel<<<grid_for(M * units, kThreads), kThreads, 0, compute_stream()>>>(
      static_cast<uint16_t*>(out), static_cast<const uint16_t*>(inp), rows, M, units, inp_rows);
  ZT_CUDA_CHECK_LAUNCH(gather_rows_kernel);
}

void combine_rows(float* out, const float* inp, const int32_t* slots, const float* weights, int64_t N, int64_t K,
                  int64_t C, int64_t inp_rows) {
  combine_rows_kernel<<<grid_for(N * C, kThreads), kThreads, 0, compute_stream()>>>(out, inp, slots, weights, N, K,
                                                                                    C, inp_rows);
  ZT_CUDA_CHECK_LAUNCH(combine_rows_kernel);
}

void combine_rows_backward(float* dinp, float* dweights, const float* dout, const float* inp, const int32_t* slots,
                           const float* weights, int64_t N, int64_t K, int64_t C, int64_t inp_rows) {
  if (N * K == 0) return;
  combine_rows_backward_kernel<<<static_cast<unsigned>(N * K), 128, 0, compute_stream()>>>(
      dinp, dweights, dout, inp, slots, weights, K, C, inp_rows);
  ZT_CUDA_CHECK_LAUNCH(combine_rows_backward_kernel);
}

}  // namespace zt::cuda
