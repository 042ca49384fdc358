// Causal attention forward/backward and RoPE at model shapes and growing T. GFLOP/s counts
// the dense matmul work (forward 4*B*H*T*T*D, backward 8*B*H*T*T*D) as is customary;
// causal_GFLOP/s counts only the lower triangle the math needs (T*(T+1)/2 instead of T*T per
// head). Backward's recomputation of the scores is not counted: the rates compare with
// kernels that store the probabilities.
// Run with OMP_NUM_THREADS set to the cores you want.
#include <benchmark/benchmark.h>

#include "core/kernels.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace zt {
namespace {

AttnShape shape_of(const benchmark::State& st) {
  return {st.range(0), st.range(1), st.range(2), st.range(3), st.range(4)};
}

Tensor randn(const Shape& shape, uint64_t stream, DType dtype = DType::f32) {
  Tensor t = Tensor::empty(shape, DType::f32);
  fill_normal(t, 0.f, 1.f, 7, stream);
  if (dtype == DType::f32) return t;
  Tensor low = Tensor::empty(shape, dtype);
  convert(low, t);
  return low;
}

void set_counters(benchmark::State& st, const AttnShape& s, double matmuls) {
  const double per_pair = 2.0 * matmuls * s.head_dim;  // flops per (query, key) pair
  const double dense = per_pair * s.B * s.n_head * s.T * s.T;
  const double causal = per_pair * s.B * s.n_head * s.T * (s.T + 1) / 2.0;
  st.counters["GFLOP/s"] =
      benchmark::Counter(dense * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["causal_GFLOP/s"] =
      benchmark::Counter(causal * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// dtype: of qkv and out (bf16: a bf16 model's activations); dout, dqkv and lse stay f32.
void BM_AttentionForward(benchmark::State& st, DType dtype) {
  const AttnShape s = shape_of(st);
  Tensor qkv = randn({s.B, s.T, s.qkv_width()}, 1, dtype);
  Tensor out = Tensor::empty({s.B, s.T, s.n_head * s.head_dim}, dtype);
  Tensor lse = Tensor::empty({s.B, s.n_head, s.T}, DType::f32);
  for (auto _ : st) {
    attention_forward(out, lse, qkv, s);
    benchmark::DoNotOptimize(out.raw());
  }
  set_counters(st, s, 2);
}

void BM_AttentionBackward(benchmark::State& st, DType dtype) {
  const AttnShape s = shape_of(st);
  Tensor qkv = randn({s.B, s.T, s.qkv_width()}, 1, dtype);
  Tensor dout = randn({s.B, s.T, s.n_head * s.head_dim}, 2);
  Tensor out = Tensor::empty({s.B, s.T, s.n_head * s.head_dim}, dtype);
  Tensor lse = Tensor::empty({s.B, s.n_head, s.T}, DType::f32);
  Tensor dqkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::f32);
  attention_forward(out, lse, qkv, s);
  for (auto _ : st) {
    attention_backward(dqkv, dout, qkv, out, lse, s);
    benchmark::DoNotOptimize(dqkv.raw());
  }
  set_counters(st, s, 4);
}

void BM_RopeForward(benchmark::State& st) {
  const AttnShape s = shape_of(st);
  Tensor qkv = randn({s.B, s.T, s.qkv_width()}, 1);
  Tensor table = rope_table(s.T, s.head_dim, 10000.f);
  for (auto _ : st) {
    rope_forward(qkv, table, s);
    benchmark::DoNotOptimize(qkv.raw());
  }
  st.SetBytesProcessed(st.iterations() * 2 * s.B * s.T * (s.n_head + s.n_kv_head) *
                       s.head_dim * int64_t{sizeof(float)});
}

// {B, T, H, KVH, D}: the model shapes, GPT-2 124M (12 heads of 64, T = 64 here), the previous
// default job (4 heads of 64, T = 128, B = 32) and the default job (shakespeare-char: 4 heads
// of 32, T = 128, B = 8); then 12 heads of 64 at growing T (B shrinking so every case has
// similar work) for how the rate holds up with T, and a GQA case.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "H", "KVH", "D"});
  b->Args({4, 64, 12, 12, 64});
  b->Args({32, 128, 4, 4, 64});
  b->Args({8, 128, 4, 4, 32});
  b->Args({4, 256, 12, 12, 64});
  b->Args({2, 1024, 12, 12, 64});
  b->Args({1, 4096, 12, 12, 64});
  b->Args({16, 256, 6, 2, 64});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_AttentionForward, f32, DType::f32)->Apply(shapes);
BENCHMARK_CAPTURE(BM_AttentionForward, bf16, DType::bf16)->Apply(shapes);
BENCHMARK_CAPTURE(BM_AttentionBackward, f32, DType::f32)->Apply(shapes);
BENCHMARK_CAPTURE(BM_AttentionBackward, bf16, DType::bf16)->Apply(shapes);
BENCHMARK(BM_RopeForward)->Apply(shapes);

}  // namespace
}  // namespace zt

BENCHMARK_MAIN();
