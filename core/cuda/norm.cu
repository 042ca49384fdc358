// LayerNorm and RMSNorm forward and backward, column sums and the fused cross-entropy.
// Weight gradients are deterministic without float atomics: fixed row chunks write partial
// column sums, then one pass adds the chunks in order.
#include "core/cuda/common.cuh"
#include "core/math/activation.h"

namespace zt::cuda {

namespace {
constexpr int kRowThreads = 256;   // one block per row
constexpr int kColThreads = 128;   // column-sum blocks: one thread per column
constexpr int64_t kMaxRowChunks = 256;

// out (N,C); mean, rstd (N). Two-pass corrected variance, as the CPU kernel.
__global__ void layernorm_forward_kernel(void* out, Elem out_type, float* mean, float* rstd, const float* inp,
                                         const float* w, const float* b, int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const float* x = inp + n * C;
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += x[c];
  float m = block_sum(s, scratch) / static_cast<float>(C);
  float v = 0.f, resid = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = x[c] - m;
    v += d * d;
    resid += d;
  }
  v = block_sum(v, scratch);
  const float dm = block_sum(resid, scratch) / static_cast<float>(C);
  m += dm;
  const float var = fmaxf(v / static_cast<float>(C) - dm * dm, 0.f);
  const float r = 1.f / sqrtf(var + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float y = (x[c] - m) * r * w[c];
    store(out, n * C + c, out_type, b ? y + b[c] : y);
  }
  if (threadIdx.x == 0) {
    mean[n] = m;
    rstd[n] = r;
  }
}

// dinp (N,C) += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w; mean null: RMSNorm.
__global__ void norm_backward_dinp_kernel(float* dinp, const float* dout, const float* inp, const float* w,
                                          const float* mean, const float* rstd, int64_t C) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const float* x = inp + n * C;
  const float* g = dout + n * C;
  const float m = mean ? mean[n] : 0.f, r = rstd[n];
  float sum_g = 0.f, sum_gx = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float gw = g[c] * w[c];
    sum_g += gw;
    sum_gx += gw * (x[c] - m) * r;
  }
  const float mg = mean ? block_sum(sum_g, scratch) / static_cast<float>(C) : 0.f;
  const float mgx = block_sum(sum_gx, scratch) / static_cast<float>(C);
  float* dx = dinp + n * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = (x[c] - m) * r;
    dx[c] += r * (g[c] * w[c] - mg - xhat * mgx);
  }
}

// partial (chunks, C) [and partial_plain]: chunk k's sum over its rows of g * xhat (xhat = 1
// when rstd is null: a plain column sum), plus the plain sum of g when partial_plain is set.
__global__ void column_partial_kernel(float* partial, float* partial_plain, const float* g, const float* inp,
                                      const float* mean, const float* rstd, int64_t N, int64_t C, int64_t rows_per) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int64_t k = blockIdx.y, begin = k * rows_per, end = min(N, begin + rows_per);
  float acc = 0.f, plain = 0.f;
  for (int64_t n = begin; n < end; ++n) {
    const float gv = g[n * C + c];
    const float xhat = rstd ? (inp[n * C + c] - (mean ? mean[n] : 0.f)) * rstd[n] : 1.f;
    acc += gv * xhat;
    plain += gv;
  }
  partial[k * C + c] = acc;
  if (partial_plain) partial_plain[k * C + c] = plain;
}

// out (C) += sum over chunks k (in order) of partial (chunks, C).
__global__ void column_reduce_kernel(float* out, const float* partial, int64_t chunks, int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int64_t k = 0; k < chunks; ++k) s += partial[k * C + c];
  out[c] += s;
}

// Deterministic dw (+ dplain) accumulation over N rows; see column_partial_kernel.
void column_sums(float* dw, float* dplain, const float* g, const float* inp, const float* mean, const float* rstd,
                 int64_t N, int64_t C, float* scratch) {
  if (N == 0 || C == 0) return;
  cudaStream_t stream = compute_stream();
  const int64_t chunks = std::min(N, kMaxRowChunks), rows_per = (N + chunks - 1) / chunks;
  float* partial = scratch;  // (chunks, C), then (chunks, C) for dplain
  float* partial_plain = dplain ? partial + chunks * C : nullptr;
  const dim3 grid(static_cast<unsigned>((C + kColThreads - 1) / kColThreads), static_cast<unsigned>(chunks));
  column_partial_kernel<<<grid, kColThreads, 0, stream>>>(partial, partial_plain, g, inp, mean, rstd, N, C,
                                                          rows_per);
  ZT_CUDA_CHECK_LAUNCH(column_partial_kernel);
  const unsigned col_blocks = static_cast<unsigned>((C + kColThreads - 1) / kColThreads);
  column_reduce_kernel<<<col_blocks, kColThreads, 0, stream>>>(dw, partial, chunks, C);
  ZT_CUDA_CHECK_LAUNCH(column_reduce_kernel);
  if (dplain) {
    column_reduce_kernel<<<col_blocks, kColThreads, 0, stream>>>(dplain, partial_plain, chunks, C);
    ZT_CUDA_CHECK_LAUNCH(column_reduce_kernel);
  }
}

// out (N,C) = inp * rstd * w, rstd (N) = 1/sqrt(mean(inp^2) + eps).
__global__ void rmsnorm_forward_kernel(void* out, Elem out_type, float* rstd, const float* inp, const float* w,
                                       int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const float* x = inp + n * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
  const float r = 1.f / sqrtf(block_sum(ss, scratch) / static_cast<float>(C) + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) store(out, n * C + c, out_type, x[c] * r * w[c]);
  if (threadIdx.x == 0) rstd[n] = r;
}

// One block per row of logits (N,V): loss = log(sum exp(x - max)) + max - x[target]; with
// dlogits, (softmax - onehot) * scale written over it (it may alias logits: each element is
// read before it is written, and x[target] is saved first). An out-of-range target: NaN.
__global__ void cross_entropy_kernel(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                     int64_t V, float dloss_scale) {
  __shared__ float scratch_f[32];
  __shared__ double scratch_d[32];
  const int64_t n = blockIdx.x;
  const float* x = logits + n * V;
  float* d = dlogits ? dlogits + n * V : nullptr;
  const int64_t t = targets[n];
  const bool valid = t >= 0 && t < V;
  const float xt = valid ? x[t] : 0.f;  // every thread reads it before any thread writes the row
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, x[v]);
  mx = block_max(mx, scratch_f);  // its barriers order the reads of x[t] before the writes below
  float s = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float ex = math::fast_exp(x[v] - mx);
    if (d) d[v] = ex;
    s += ex;
  }
  const double sum = block_sum(static_cast<double>(s), scratch_d);
  if (threadIdx.x == 0)
    losses[n] = valid ? static_cast<float>(log(sum) + (static_cast<double>(mx) - xt)) : NAN;
  if (!d) return;
  const float inv = static_cast<float>(dloss_scale / sum);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) d[v] = valid ? d[v] * inv : NAN;
  __syncthreads();
  if (threadIdx.x == 0 && valid) d[t] -= dloss_scale;
}
}  // namespace

void layernorm_forward(void* out, Elem out_type, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int64_t N, int64_t C, float eps) {
  if (N == 0) return;
  layernorm_forward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, compute_stream()>>>(out, out_type, mean, rstd,
                                                                                           inp, w, b, C, eps);
  ZT_CUDA_CHECK_LAUNCH(layernorm_forward_kernel);
}

int64_t column_sums_scratch(int64_t N, int64_t C) { return 2 * std::min(N, kMaxRowChunks) * C; }

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t N, int64_t C, float* scratch) {
  if (N == 0) return;
  norm_backward_dinp_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, compute_stream()>>>(dinp, dout, inp, w, mean,
                                                                                            rstd, C);
  ZT_CUDA_CHECK_LAUNCH(norm_backward_dinp_kernel);
  column_sums(dw, db, dout, inp, mean, rstd, N, C, scratch);
}

void rmsnorm_forward(void* out, Elem out_type, float* rstd, const float* inp, const float* w, int64_t N, int64_t C,
                     float eps) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, compute_stream()>>>(out, out_type, rstd, inp, w,
                                                                                         C, eps);
  ZT_CUDA_CHECK_LAUNCH(rmsnorm_forward_kernel);
}

void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                      int64_t N, int64_t C, float* scratch) {
  if (N == 0) return;
  norm_backward_dinp_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, compute_stream()>>>(dinp, dout, inp, w,
                                                                                            nullptr, rstd, C);
  ZT_CUDA_CHECK_LAUNCH(norm_backward_dinp_kernel);
  column_sums(dw, nullptr, dout, inp, nullptr, rstd, N, C, scratch);
}

void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, float* scratch) {
  column_sums(out, nullptr, x, nullptr, nullptr, nullptr, N, C, scratch);
}

void cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, int64_t N, int64_t V,
                   float dloss_scale) {
  if (N == 0) return;
  cross_entropy_kernel<<<static_cast<unsigned>(N), 512, 0, compute_stream()>>>(losses, dlogits, logits, targets, V,
                                                                               dloss_scale);
  ZT_CUDA_CHECK_LAUNCH(cross_entropy_kernel);
}

}  // namespace zt::cuda
