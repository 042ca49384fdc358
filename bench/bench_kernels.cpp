// Layer kernels at GPT-2 124M shapes: N = 256 rows (e.g. B=4, T=64), C = 768, V = 50257.
// GEMM-backed kernels report GFLOP/s (linear forward 2*N*C*OC, backward 4*N*C*OC: dinp and
// dweight); memory-bound kernels report bytes/s over what they must read and write.
// Run with OMP_NUM_THREADS set to the cores you want.
#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "bench/linear_gemm.h"
#include "core/cpu/gemm.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace zt {
namespace {

constexpr int64_t kRows = 256, kC = 768, kVocab = 50257;

Tensor randn(const Shape& shape, uint64_t stream, float std = 1.f) {
  Tensor t = Tensor::empty(shape, DType::f32);
  fill_normal(t, 0.f, std, 7, stream);
  return t;
}

void flops_counter(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Raw GEMMs, one row per transpose case the linear layer uses:
// NT = forward (N,C)x(OC,C)^T, NN = dinp (N,OC)x(OC,C), TN = dweight (N,OC)^T x (N,C).
// Kind: fp32 sgemm (the model's fp32 GEMM: oneDNN with AVX-512, our blocked kernel with AVX2),
// our blocked kernel on fp32 operands (f32_blocked: the same kernel as bf16 without the
// widening, which separates the kernel's cost from bf16's), or bf16 operands with fp32
// accumulation through our kernel; each for the active ISA (the best this CPU has;
// ZT_CPU_ISA=avx2|generic measures a lower one).
enum class GemmKind { f32, f32_blocked, bf16 };

template <GemmKind kKind>
void BM_Gemm(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), OC = st.range(2), which = st.range(3);
  constexpr DType dt = kKind == GemmKind::bf16 ? DType::bf16 : DType::f32;
  auto operand = [&](const Shape& shape, uint64_t stream) {
    Tensor f = randn(shape, stream), out = Tensor::empty(shape, dt);
    convert(out, f);
    return out;
  };
  Tensor x = operand({N, C}, 1), w = operand({OC, C}, 2), g = operand({N, OC}, 3);
  Tensor y = Tensor::zeros({N, OC}, DType::f32), dx = Tensor::zeros({N, C}, DType::f32),
         dw = Tensor::zeros({OC, C}, DType::f32);
  auto gemm = [](bool ta, bool tb, int64_t M, int64_t Nn, int64_t K, const Tensor& A, int64_t lda,
                 const Tensor& B, int64_t ldb, float beta, Tensor& Cm, int64_t ldc) {
    if constexpr (kKind == GemmKind::f32)
      cpu::sgemm(ta, tb, M, Nn, K, 1.f, A.data<float>(), lda, B.data<float>(), ldb, beta, Cm.data<float>(), ldc);
    else if constexpr (kKind == GemmKind::f32_blocked)
      cpu::sgemm_blocked_isa(cpu::active_isa(), ta, tb, M, Nn, K, 1.f, A.data<float>(), lda, B.data<float>(), ldb,
                             beta, Cm.data<float>(), ldc);
    else
      cpu::gemm_bf16(ta, tb, M, Nn, K, 1.f, A.data<uint16_t>(), lda, B.data<uint16_t>(), ldb, beta,
                     Cm.data<float>(), ldc);
  };
  const bench::LinearGemm c = bench::linear_gemm(N, C, OC, int(which));
  // The operands of each case: x w^T, dy w, dy^T x.
  const Tensor& a = which == 0 ? x : g;
  const Tensor& b = which == 2 ? x : w;
  Tensor& out = which == 0 ? y : which == 1 ? dx : dw;
  for (auto _ : st) {
    gemm(c.ta, c.tb, c.M, c.N, c.K, a, c.lda, b, c.ldb, c.beta, out, c.N);
    benchmark::ClobberMemory();
  }
  st.SetLabel(std::string(bench::kLinearCaseNames[which]) +
              (kKind != GemmKind::f32 ? std::string(" ") + cpu::isa_name(cpu::active_isa()) : ""));
  flops_counter(st, 2.0 * N * C * OC);
}

// With kBf16 the weights are bf16 (precision.compute: bf16): inputs rounded to bf16, then
// cpu::gemm_bf16 with fp32 accumulation.
template <bool kBf16>
Tensor weight(const Shape& shape) {
  Tensor w = randn(shape, 2);
  if (!kBf16) return w;
  Tensor out = Tensor::empty(shape, DType::bf16);
  convert(out, w);
  return out;
}

template <bool kBf16>
void BM_LinearForward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), OC = st.range(2);
  Tensor x = randn({N, C}, 1), w = weight<kBf16>({OC, C}), b = randn({OC}, 3);
  Tensor y = Tensor::empty({N, OC}, DType::f32);
  for (auto _ : st) {
    linear_forward(y, x, w, &b);
    benchmark::DoNotOptimize(y.raw());
  }
  flops_counter(st, 2.0 * N * C * OC);
}

template <bool kBf16>
void BM_LinearBackward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), OC = st.range(2);
  Tensor x = randn({N, C}, 1), w = weight<kBf16>({OC, C}), g = randn({N, OC}, 3);
  Tensor dx = Tensor::zeros({N, C}, DType::f32), dw = Tensor::zeros({OC, C}, DType::f32),
         db = Tensor::zeros({OC}, DType::f32);
  for (auto _ : st) {
    linear_backward(&dx, dw, &db, g, x, w);
    benchmark::DoNotOptimize(dw.raw());
  }
  flops_counter(st, 4.0 * N * C * OC);
}

// {N, C, OC}: attention qkv, attention projection, MLP up, MLP down, tied LM head.
void linear_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "OC"});
  b->Args({kRows, kC, 3 * kC});
  b->Args({kRows, kC, kC});
  b->Args({kRows, kC, 4 * kC});
  b->Args({kRows, 4 * kC, kC});
  b->Args({kRows, kC, kVocab});
  // The default job's (as in sgemm_shapes).
  for (auto [c, oc] : {std::pair<int64_t, int64_t>{128, 384}, {128, 512}, {128, 128}, {512, 128}, {128, 65}})
    b->Args({1024, c, oc});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void sgemm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "OC", "case"});
  for (int64_t oc : {3 * kC, 4 * kC, kC, kVocab})
    for (int64_t which : {0, 1, 2}) b->Args({kRows, kC, oc, which});
  // The default job's (configs/shakespeare-char.yaml: 1024 rows, d_model 128): qkv, fc, the
  // attention projection, the MLP projection and the head (65 characters).
  for (auto [c, oc] : {std::pair<int64_t, int64_t>{128, 384}, {128, 512}, {128, 128}, {512, 128}, {128, 65}})
    for (int64_t which : {0, 1, 2}) b->Args({1024, c, oc, which});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void BM_LayerNormForward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1);
  Tensor x = randn({N, C}, 1), w = randn({C}, 2), b = randn({C}, 3);
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  for (auto _ : st) {
    layernorm_forward(y, mean, rstd, x, w, &b, 1e-5f);
    benchmark::DoNotOptimize(y.raw());
  }
  st.SetBytesProcessed(st.iterations() * 2 * N * C * int64_t{sizeof(float)});
}

void BM_LayerNormBackward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1);
  Tensor x = randn({N, C}, 1), w = randn({C}, 2), b = randn({C}, 3), g = randn({N, C}, 4);
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  Tensor dx = Tensor::zeros({N, C}, DType::f32), dw = Tensor::zeros({C}, DType::f32),
         db = Tensor::zeros({C}, DType::f32);
  layernorm_forward(y, mean, rstd, x, w, &b, 1e-5f);
  for (auto _ : st) {
    layernorm_backward(dx, dw, &db, g, x, w, mean, rstd);
    benchmark::DoNotOptimize(dx.raw());
  }
  // Reads x, dout and dinp, writes dinp.
  st.SetBytesProcessed(st.iterations() * 4 * N * C * int64_t{sizeof(float)});
}

void BM_GeluForward(benchmark::State& st) {
  const int64_t n = st.range(0) * st.range(1);
  Tensor x = randn({n}, 1), y = Tensor::empty({n}, DType::f32);
  for (auto _ : st) {
    gelu_forward(y, x);
    benchmark::DoNotOptimize(y.raw());
  }
  st.SetBytesProcessed(st.iterations() * 2 * n * int64_t{sizeof(float)});
  st.SetItemsProcessed(st.iterations() * n);
}

void BM_GeluBackward(benchmark::State& st) {
  const int64_t n = st.range(0) * st.range(1);
  Tensor x = randn({n}, 1), g = randn({n}, 2), dx = Tensor::zeros({n}, DType::f32);
  for (auto _ : st) {
    gelu_backward(dx, g, x);
    benchmark::DoNotOptimize(dx.raw());
  }
  st.SetBytesProcessed(st.iterations() * 4 * n * int64_t{sizeof(float)});
  st.SetItemsProcessed(st.iterations() * n);
}

Tensor targets_for(int64_t N, int64_t V) {
  Tensor t = Tensor::empty({N}, DType::i32);
  for (int64_t n = 0; n < N; ++n) t.data<int32_t>()[n] = static_cast<int32_t>((n * 7919) % V);
  return t;
}

void BM_CrossEntropyForward(benchmark::State& st) {
  const int64_t N = st.range(0), V = st.range(1);
  Tensor logits = randn({N, V}, 1, 2.f), targets = targets_for(N, V);
  Tensor losses = Tensor::empty({N}, DType::f32);
  for (auto _ : st) {
    cross_entropy_forward(losses, logits, targets);
    benchmark::DoNotOptimize(losses.raw());
  }
  st.SetBytesProcessed(st.iterations() * N * V * int64_t{sizeof(float)});
  st.SetItemsProcessed(st.iterations() * N * V);
}

// In place (dlogits aliases logits), as the model runs it: refreshed from a copy each
// iteration outside the timed region would dominate, so the logits simply keep being
// overwritten by gradients (values stay O(1), which is all the cost depends on).
void BM_CrossEntropyForwardBackward(benchmark::State& st) {
  const int64_t N = st.range(0), V = st.range(1);
  Tensor logits = randn({N, V}, 1, 2.f), targets = targets_for(N, V);
  Tensor losses = Tensor::empty({N}, DType::f32);
  for (auto _ : st) {
    cross_entropy_forward_backward(losses, logits, logits, targets, 1.f / N);
    benchmark::DoNotOptimize(logits.raw());
  }
  st.SetBytesProcessed(st.iterations() * 2 * N * V * int64_t{sizeof(float)});
  st.SetItemsProcessed(st.iterations() * N * V);
}

void BM_EmbeddingForward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), T = 64;
  Tensor wte = randn({kVocab, C}, 1), wpe = randn({1024, C}, 2), tokens = targets_for(N, kVocab);
  Tensor y = Tensor::empty({N, C}, DType::f32);
  for (auto _ : st) {
    embedding_forward(y, tokens, wte, &wpe, T);
    benchmark::DoNotOptimize(y.raw());
  }
  st.SetBytesProcessed(st.iterations() * 3 * N * C * int64_t{sizeof(float)});
}

void BM_EmbeddingBackward(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), T = 64;
  Tensor g = randn({N, C}, 1), tokens = targets_for(N, kVocab);
  Tensor dwte = Tensor::zeros({kVocab, C}, DType::f32), dwpe = Tensor::zeros({1024, C}, DType::f32);
  for (auto _ : st) {
    embedding_backward(dwte, &dwpe, g, tokens, T);
    benchmark::DoNotOptimize(dwte.raw());
  }
  st.SetBytesProcessed(st.iterations() * 5 * N * C * int64_t{sizeof(float)});
}

// f32 <-> f16 and bf16 conversions of gpt2-124m's MLP weight (768 x 3072), as fp16 and bf16
// compute convert GEMM operands and compute copies: 0 f32 -> f16, 1 f16 -> f32, 2 f32 -> bf16.
void BM_Convert(benchmark::State& st) {
  const int64_t n = 4 * kC * kC;
  const int which = int(st.range(0));
  Tensor f = randn({n}, 1), h = Tensor::empty({n}, which == 2 ? DType::bf16 : DType::f16);
  if (which == 1) convert(h, f);
  for (auto _ : st) {
    if (which == 1)
      convert(f, h);
    else
      convert(h, f);
    benchmark::DoNotOptimize(f.raw());
    benchmark::DoNotOptimize(h.raw());
  }
  st.SetBytesProcessed(st.iterations() * n * 6);
  st.SetItemsProcessed(st.iterations() * n);
}

// The AdamW update over gpt2-124m's parameters as the optimizer runs it, one call per
// tensor (the token embedding, then per layer qkv, attention projection, fc, MLP projection:
// 124M values, 2 GB of state, far past any cache), without a compute copy (fp32), or writing
// the bf16 or the f16 one. Bytes: p, grad, m, v read; p, m, v (and the copy) written.
void BM_AdamWGpt2(benchmark::State& st) {
  const int copy = int(st.range(0));  // 0 none, 1 bf16, 2 f16
  const bool with_copy = copy != 0;
  std::vector<int64_t> sizes{kVocab * kC};
  for (int layer = 0; layer < 12; ++layer)
    for (int64_t n : {3 * kC * kC, kC * kC, 4 * kC * kC, 4 * kC * kC}) sizes.push_back(n);
  struct Param {
    Tensor p, g, m, v, copy;
  };
  std::vector<Param> params;
  int64_t total = 0;
  for (int64_t n : sizes) {
    Param x{randn({n}, 1, 0.02f), randn({n}, 2, 1e-3f), Tensor::zeros({n}, DType::f32), Tensor::zeros({n}, DType::f32),
            with_copy ? Tensor::empty({n}, copy == 1 ? DType::bf16 : DType::f16) : Tensor()};
    params.push_back(std::move(x));
    total += n;
  }
  int64_t step = 0;
  for (auto _ : st) {
    ++step;
    for (Param& x : params)
      adamw_update(x.p, x.g, x.m, x.v, {1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 1.f}, with_copy ? &x.copy : nullptr);
    benchmark::DoNotOptimize(params.back().p.raw());
  }
  st.counters["params"] = double(total);
  st.SetBytesProcessed(st.iterations() * total * (28 + (with_copy ? 2 : 0)));
}

BENCHMARK_TEMPLATE(BM_Gemm, GemmKind::f32)->Apply(sgemm_shapes);
BENCHMARK_TEMPLATE(BM_Gemm, GemmKind::f32_blocked)->Apply(sgemm_shapes);
BENCHMARK_TEMPLATE(BM_Gemm, GemmKind::bf16)->Apply(sgemm_shapes);
BENCHMARK_TEMPLATE(BM_LinearForward, false)->Apply(linear_shapes);
BENCHMARK_TEMPLATE(BM_LinearBackward, false)->Apply(linear_shapes);
BENCHMARK_TEMPLATE(BM_LinearForward, true)->Apply(linear_shapes);
BENCHMARK_TEMPLATE(BM_LinearBackward, true)->Apply(linear_shapes);
// gpt2-124m's rows and width, then the default job's (1024 rows, d_model 128).
void norm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C"})->Args({kRows, kC})->Args({1024, 128})->UseRealTime()->Unit(benchmark::kMicrosecond);
}
void mlp_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C"})->Args({kRows, 4 * kC})->Args({1024, 4 * 128})->UseRealTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_LayerNormForward)->Apply(norm_shapes);
BENCHMARK(BM_LayerNormBackward)->Apply(norm_shapes);
BENCHMARK(BM_GeluForward)->Apply(mlp_shapes);
BENCHMARK(BM_GeluBackward)->Apply(mlp_shapes);
BENCHMARK(BM_CrossEntropyForward)->ArgNames({"N", "V"})->Args({kRows, kVocab})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CrossEntropyForwardBackward)->ArgNames({"N", "V"})->Args({kRows, kVocab})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmbeddingForward)->ArgNames({"N", "C"})->Args({kRows, kC})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmbeddingBackward)->ArgNames({"N", "C"})->Args({kRows, kC})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Convert)->ArgName("f32_f16_bf16")->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdamWGpt2)->ArgName("copy_none_bf16_f16")->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zt

BENCHMARK_MAIN();
