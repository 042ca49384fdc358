// Elementwise kernels, conversions, the f64 sum of squares and the optimizer updates on flat
// f32 shards. All are memory bound: grid-stride loops, 256 threads.
#include <vector>

#include "core/cuda/common.cuh"
#include "core/math/optim.h"

namespace zt::cuda {

namespace {
constexpr int kThreads = 256;

__global__ void fill_kernel(float* x, float value, int64_t n) {
  ZT_GRID_STRIDE(i, n) x[i] = value;
}
__global__ void axpy_kernel(float* y, float a, const float* x, int64_t n) {
  ZT_GRID_STRIDE(i, n) y[i] += a * x[i];
}
__global__ void add_bf16_kernel(float* y, const uint16_t* x, int64_t n) {
  ZT_GRID_STRIDE(i, n) y[i] += math::bf16_to_f32(x[i]);
}
__global__ void scale_kernel(float* x, float s, int64_t n) {
  ZT_GRID_STRIDE(i, n) x[i] *= s;
}
__global__ void convert_kernel(void* dst, Elem dst_type, const void* src, Elem src_type, int64_t n) {
  // Through f32, which holds every value of f32, bf16 and f16 exactly: one rounding, to dst.
  ZT_GRID_STRIDE(i, n) store(dst, i, dst_type, load(src, i, src_type));
}

__global__ void convert_rows_kernel(void* dst, Elem dst_type, int64_t ld_dst, const void* src, Elem src_type,
                                    int64_t ld_src, int64_t rows, int64_t cols) {
  ZT_GRID_STRIDE(i, rows * ld_dst) {
    const int64_t r = i / ld_dst, c = i % ld_dst;
    store(dst, i, dst_type, c < cols ? load(src, r * ld_src + c, src_type) : 0.f);
  }
}

// partial (gridDim.x) = each block's sum of x (Square: of x^2) in f64 over its fixed
// grid-stride share.
template <bool Square>
__global__ void sum_partial_kernel(double* partial, const float* x, int64_t n) {
  __shared__ double scratch[32];
  double s = 0.0;
  ZT_GRID_STRIDE(i, n) {
    const double xi = x[i];
    s += Square ? xi * xi : xi;
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
// One block adds the partial sums in a fixed order, into *out (accumulate) or as *out.
__global__ void sum_partials_kernel(double* out, const double* partial, int64_t n, bool accumulate) {
  __shared__ double scratch[32];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = accumulate ? *out + s : s;
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, math::AdamWFactors f) {
  ZT_GRID_STRIDE(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    math::adamw_element(pi, g[i], mi, vi, f);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}
__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                           float weight_decay, float grad_scale) {
  ZT_GRID_STRIDE(i, n) {
    float pi = p[i];
    math::sgd_element(pi, g[i], buf ? buf + i : nullptr, lr, momentum, weight_decay, grad_scale);
    p[i] = pi;
  }
}
}  // namespace

void fill(float* x, float value, int64_t n) {
  fill_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(x, value, n);
  ZT_CUDA_CHECK_LAUNCH(fill_kernel);
}

void axpy(float* y, float a, const float* x, int64_t n) {
  axpy_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(y, a, x, n);
  ZT_CUDA_CHECK_LAUNCH(axpy_kernel);
}

void add_bf16(float* y, const uint16_t* x, int64_t n) {
  add_bf16_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(y, x, n);
  ZT_CUDA_CHECK_LAUNCH(add_bf16_kernel);
}

void scale(float* x, float s, int64_t n) {
  scale_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(x, s, n);
  ZT_CUDA_CHECK_LAUNCH(scale_kernel);
}

void convert(void* dst, Elem dst_type, const void* src, Elem src_type, int64_t n) {
  convert_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(dst, dst_type, src, src_type, n);
  ZT_CUDA_CHECK_LAUNCH(convert_kernel);
}

void convert_rows(void* dst, Elem dst_type, int64_t ld_dst, const void* src, Elem src_type, int64_t ld_src,
                  int64_t rows, int64_t cols) {
  const int64_t n = rows * ld_dst;
  if (n == 0) return;
  convert_rows_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(dst, dst_type, ld_dst, src, src_type,
                                                                               ld_src, rows, cols);
  ZT_CUDA_CHECK_LAUNCH(convert_rows_kernel);
}

void copy_rows(void* dst, int64_t ld_dst, const void* src, int64_t ld_src, int64_t row_bytes, int64_t rows) {
  if (rows == 0 || row_bytes == 0) return;
  ZT_CUDA_CHECK(cudaMemcpy2DAsync(dst, ld_dst, src, ld_src, row_bytes, rows, cudaMemcpyDeviceToDevice,
                                  compute_stream()));
}

namespace {
// A fixed grid (not one sized by the device) keeps the summation order, and so the result,
// the same on every GPU.
constexpr unsigned kSumBlocks = kSumSquaresScratch - 1;

// partial: kSumBlocks doubles; out: one double (device), written or accumulated.
void sum_into(double* out, bool accumulate, const float* x, int64_t n, bool square, double* partial) {
  cudaStream_t stream = compute_stream();
  if (square) {
    sum_partial_kernel<true><<<kSumBlocks, kThreads, 0, stream>>>(partial, x, n);
    ZT_CUDA_CHECK_LAUNCH(sum_partial_kernel);
  } else {
    sum_partial_kernel<false><<<kSumBlocks, kThreads, 0, stream>>>(partial, x, n);
    ZT_CUDA_CHECK_LAUNCH(sum_partial_kernel);
  }
  sum_partials_kernel<<<1, 1024, 0, stream>>>(out, partial, kSumBlocks, accumulate);
  ZT_CUDA_CHECK_LAUNCH(sum_partials_kernel);
}
}  // namespace

double sum_squares(const float* x, int64_t n, double* scratch) {
  double* partial = scratch;  // kSumBlocks partial sums, then the total at the end
  sum_into(partial + kSumBlocks, /*accumulate=*/false, x, n, /*square=*/true, partial);
  double total = 0.0;
  cudaStream_t stream = compute_stream();
  ZT_CUDA_CHECK(cudaMemcpyAsync(&total, partial + kSumBlocks, sizeof(double), cudaMemcpyDeviceToHost, stream));
  count_host_wait();
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream));  // the API returns a host value
  return total;
}

void sum_accumulate(double* total, const float* x, int64_t n, bool square, double* scratch) {
  sum_into(total, /*accumulate=*/true, x, n, square, scratch);
}

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int64_t step, float grad_scale) {
  const auto f = math::AdamWFactors::make(lr, beta1, beta2, eps, weight_decay, step, grad_scale);
  adamw_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(p, g, m, v, n, f);
  ZT_CUDA_CHECK_LAUNCH(adamw_kernel);
}

void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                float grad_scale) {
  sgd_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(p, g, buf, n, lr, momentum, weight_decay,
                                                                       grad_scale);
  ZT_CUDA_CHECK_LAUNCH(sgd_kernel);
}

}  // namespace zt::cuda
