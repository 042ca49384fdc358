// GPU kernel microbenchmarks against their ceilings (scripts/device-check.sh runs this on the
// GPU machine): bf16 GEMM TFLOP/s at 4096^3 through linear_forward, the flash-style attention
// forward and backward at GPT-2 124M's shape (B=8, H=12, T=1024, D=64) and a Llama-style one
// (B=4, T=2048, 16 heads on 4 kv heads, D=128), LayerNorm's bandwidth.
// Prints one "name  ms  value unit" line per kernel.
#include <chrono>
#include <cstdio>
#include <functional>

#include "core/kernels.h"
#include "core/tensor.h"
#include "tests/support/scoped_env_var.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace {

#ifdef ZT_WITH_CUDA
using namespace zt;

// Mean milliseconds per call over `iters` calls after `warmup` ones, the device drained
// before and after.
double time_ms(const std::function<void()>& f, int warmup = 3, int iters = 20) {
  for (int i = 0; i < warmup; ++i) f();
  cuda::synchronize(Device::cuda(0));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  cuda::synchronize(Device::cuda(0));
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count() / iters;
}

void bench() {
  const Device gpu = Device::cuda(0);
  {
    const int64_t n = 4096;
    Tensor a = Tensor::zeros({n, n}, DType::bf16, MemTag::other, gpu);
    Tensor w = Tensor::zeros({n, n}, DType::bf16, MemTag::other, gpu);
    Tensor out = Tensor::empty({n, n}, DType::f32, MemTag::other, gpu);
    const double ms = time_ms([&] { linear_forward(out, a, w, nullptr); });
    std::printf("gemm_bf16_4096        %9.3f ms  %8.1f TFLOP/s\n", ms, 2.0 * n * n * n / (ms * 1e-3) / 1e12);
  }
  // GPT-2's LM head at B*T = 16384 rows, forward and backward (bf16 operands, f32 logits and
  // dlogits), at the vocabulary as it is (50257, odd: logits rows are not 16-byte aligned) and
  // padded to a multiple of 64 (50304), which measures what padding would buy.
  for (const int64_t vocab : {int64_t{50257}, int64_t{50304}}) {
    const int64_t rows = 16384, c = 768;
    Tensor x = Tensor::zeros({rows, c}, DType::bf16, MemTag::other, gpu);
    Tensor w = Tensor::zeros({vocab, c}, DType::bf16, MemTag::other, gpu);
    Tensor logits = Tensor::empty({rows, vocab}, DType::f32, MemTag::other, gpu);
    Tensor dx = Tensor::zeros({rows, c}, DType::f32, MemTag::other, gpu);
    Tensor dw = Tensor::zeros({vocab, c}, DType::f32, MemTag::other, gpu);
    const double flops = 2.0 * rows * vocab * c;
    const double fwd = time_ms([&] { linear_forward(logits, x, w, nullptr); });
    std::printf("lm_head_fwd_%-9lld %9.3f ms  %8.1f TFLOP/s\n", static_cast<long long>(vocab), fwd,
                flops / (fwd * 1e-3) / 1e12);
    if (vocab % 4 != 0) {  // the misaligned rows through aligned chunks
      const testing::ScopedEnvVar rows("ZT_CUDA_LINEAR_OUT", "aligned");
      const double aligned = time_ms([&] { linear_forward(logits, x, w, nullptr); });
      std::printf("lm_head_fwd_aligned_%lld %9.3f ms  %8.1f TFLOP/s\n", static_cast<long long>(vocab), aligned,
                  flops / (aligned * 1e-3) / 1e12);
    }
    const double bwd = time_ms([&] { linear_backward(&dx, dw, nullptr, logits, x, w); });
    std::printf("lm_head_bwd_%-9lld %9.3f ms  %8.1f TFLOP/s\n", static_cast<long long>(vocab), bwd,
                2 * flops / (bwd * 1e-3) / 1e12);
  }
  // Attention, bf16 (the tensor-core kernels): GPT-2 124M's shape, and a Llama-style one
  // (head dim 128, 4 query heads per kv head).
  const auto attention = [&](const char* name, const AttnShape& s) {
    Tensor qkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::bf16, MemTag::other, gpu);
    Tensor out = Tensor::empty({s.B, s.T, s.n_head * s.head_dim}, DType::bf16, MemTag::other, gpu);
    Tensor lse = Tensor::empty({s.B, s.n_head, s.T}, DType::f32, MemTag::other, gpu);
    Tensor dout = Tensor::zeros({s.B, s.T, s.n_head * s.head_dim}, DType::f32, MemTag::other, gpu);
    Tensor dqkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::f32, MemTag::other, gpu);
    // Causal: half of the 4 B H T^2 D multiply-adds of the full score and value products;
    // backward counts 2.5x forward (dV, dP, dS^T Q, dS K), not the recomputed scores.
    const double flops = 4.0 * s.B * s.n_head * s.T * s.T * s.head_dim / 2;
    const double fwd = time_ms([&] { attention_forward(out, lse, qkv, s); });
    std::printf("attention_fwd_%-7s %9.3f ms  %8.1f TFLOP/s\n", name, fwd, flops / (fwd * 1e-3) / 1e12);
    const double bwd = time_ms([&] { attention_backward(dqkv, dout, qkv, out, lse, s); });
    std::printf("attention_bwd_%-7s %9.3f ms  %8.1f TFLOP/s\n", name, bwd, 2.5 * flops / (bwd * 1e-3) / 1e12);
  };
  attention("gpt2", AttnShape{8, 1024, 12, 12, 64});
  attention("llama", AttnShape{4, 2048, 16, 4, 128});
  {
    const int64_t N = 8 * 1024, C = 768;
    Tensor x = Tensor::zeros({N, C}, DType::f32, MemTag::other, gpu), y = Tensor::empty({N, C}, DType::bf16, MemTag::other, gpu);
    Tensor w = Tensor::zeros({C}, DType::f32, MemTag::other, gpu), b = Tensor::zeros({C}, DType::f32, MemTag::other, gpu);
    Tensor mean = Tensor::empty({N}, DType::f32, MemTag::other, gpu), rstd = Tensor::empty({N}, DType::f32, MemTag::other, gpu);
    const double ms = time_ms([&] { layernorm_forward(y, mean, rstd, x, w, &b, 1e-5f); });
    std::printf("layernorm_fwd_8k_768  %9.3f ms  %8.1f GB/s\n", ms, (N * C * 6.0) / (ms * 1e-3) / 1e9);
  }
}
#endif

}  // namespace

int main() {
#ifdef ZT_WITH_CUDA
  if (zt::cuda::device_count() == 0) {
    std::printf("no CUDA device: %s\n", zt::cuda::unavailable_reason().c_str());
    return 0;
  }
  bench();
#else
  std::printf("cuda: not built\n");
#endif
  return 0;
}
