// The flash-style attention kernels and RoPE on the GPU against the CPU: MHA and GQA, head dims
// 64 and 128 and odd ones, T not a multiple of any tile; the log-sum-exp saved for backward.
#include <cstdlib>
#include <cstring>
#include <string>

#include <gmock/gmock.h>

#include "core/error.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/support/scoped_env_var.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/ops.h"
#endif

namespace zt::testing {
namespace {

struct Case {
  int64_t B, T, H, KVH, D;
};

// Attention of shape `c` with q/k/v and the output in `dtype`, forward and backward on the GPU
// against the CPU, inputs drawn from seeds seed.. seed + 2; returns the GPU's operands, so a
// test can run the backward again.
struct GpuAttention {
  AttnShape shape;
  Tensor qkv, out, lse, dout, dqkv_before;
};
GpuAttention expect_attention_matches_cpu(const Case& c, DType dtype, uint64_t seed, double out_tol, double dqkv_tol) {
  const AttnShape s{c.B, c.T, c.H, c.KVH, c.D};
  const std::string what = std::string("attention ") + std::string(dtype_name(dtype));
  const Tensor qkv = random_cpu({c.B, c.T, s.qkv_width()}, seed, 1.f, dtype), gqkv = to_gpu(qkv);
  Tensor out = Tensor::empty({c.B, c.T, c.H * c.D}, dtype), lse = Tensor::empty({c.B, c.H, c.T}, DType::f32);
  Tensor gout = Tensor::empty(out.shape(), dtype, MemTag::other, Device::cuda(0)), glse = to_gpu(lse);
  attention_forward(out, lse, qkv, s);
  attention_forward(gout, glse, gqkv, s);
  expect_close(out, gout, out_tol, what + " out");
  expect_close(lse, glse, kF32Tol, what + " lse");
  const Tensor dout = random_cpu({c.B, c.T, c.H * c.D}, seed + 1);
  const Tensor dqkv_before = random_cpu({c.B, c.T, s.qkv_width()}, seed + 2), gdout = to_gpu(dout);
  Tensor dqkv = dqkv_before.clone(MemTag::other), gdqkv = to_gpu(dqkv_before);
  attention_backward(dqkv, dout, qkv, out, lse, s);
  attention_backward(gdqkv, gdout, gqkv, gout, glse, s);
  expect_close(dqkv, gdqkv, dqkv_tol, what + " dqkv");
  return {s, gqkv, gout, glse, gdout, to_gpu(dqkv_before)};
}

class CudaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CudaAttention, ForwardAndBackwardMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  expect_attention_matches_cpu(GetParam(), DType::f32, 1, kF32Tol, 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaAttention,
                         ::testing::Values(Case{2, 77, 4, 4, 64}, Case{1, 130, 8, 2, 128}, Case{2, 33, 6, 3, 40},
                                           Case{1, 5, 2, 1, 7}, Case{1, 64, 2, 2, 256}));

// Sets ZT_CUDA_ATTENTION (the bf16 attention kernels; nullptr: unset) for one scope.
class ScopedAttentionKernels : public ScopedEnvVar {
 public:
  explicit ScopedAttentionKernels(const char* kernels) : ScopedEnvVar("ZT_CUDA_ATTENTION", kernels) {}
};

// The plain kernels on bf16 activations (ZT_CUDA_ATTENTION=plain; head dim 64 would otherwise
// take the tensor cores).
TEST(CudaAttentionBf16, Bf16ActivationsMatchTheCpuWithinARounding) {
  ZT_REQUIRE_CUDA();
  ScopedAttentionKernels plain("plain");
  const Case c{2, 50, 4, 2, 64};
#ifdef ZT_WITH_CUDA
  ASSERT_FALSE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, {c.B, c.T, c.H, c.KVH, c.D}));
#endif
  expect_attention_matches_cpu(c, DType::bf16, 4, kBf16Tol, kBf16Tol);
}

// Which kernels bf16 takes: the tensor cores by default (head dims 64 and 128), the plain ones
// with ZT_CUDA_ATTENTION=plain, and any other value an error naming the variable. Host code:
// runs in every CUDA build, GPU or not.
TEST(CudaAttentionChoice, TensorCoresByDefaultPlainOnRequestOtherValuesRefused) {
#ifndef ZT_WITH_CUDA
  GTEST_SKIP() << "built without CUDA";
#else
  const cuda::AttnDims d64{1, 16, 2, 2, 64}, d128{1, 16, 2, 1, 128}, d40{1, 16, 2, 2, 40};
  {
    ScopedAttentionKernels unset(nullptr);
    EXPECT_TRUE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, d64));
    EXPECT_TRUE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, d128));
    EXPECT_FALSE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, d40));
    EXPECT_FALSE(cuda::attention_uses_tensor_cores(cuda::Elem::f32, d64));
    EXPECT_FALSE(cuda::attention_uses_tensor_cores(cuda::Elem::f16, d64));
  }
  {
    ScopedAttentionKernels plain("plain");
    EXPECT_FALSE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, d64));
  }
  {
    ScopedAttentionKernels typo("flash");
    try {
      cuda::attention_uses_tensor_cores(cuda::Elem::bf16, d64);
      ADD_FAILURE() << "ZT_CUDA_ATTENTION=flash was accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("ZT_CUDA_ATTENTION=flash"));
    }
  }
#endif
}

// bf16 at head dims 64 and 128 runs the tensor-core kernels (the default; set here in case
// the environment asks for plain): against the CPU's bf16 path (which widens to f32), forward
// and backward, T inside one tile, across tiles and ragged; MHA, GQA, MQA.
class CudaAttentionTensorCores : public ::testing::TestWithParam<Case> {
 protected:
  ScopedAttentionKernels tensor_cores_{"tensor_cores"};
};

TEST_P(CudaAttentionTensorCores, Bf16ForwardAndBackwardMatchTheCpu) {
  ZT_REQUIRE_CUDA();
#ifdef ZT_WITH_CUDA
  const Case c = GetParam();
  ASSERT_TRUE(cuda::attention_uses_tensor_cores(cuda::Elem::bf16, {c.B, c.T, c.H, c.KVH, c.D}));
  // dO, P and dS are rounded to bf16 for the tensor cores (as FlashAttention does): two roundings.
  const GpuAttention g = expect_attention_matches_cpu(c, DType::bf16, 5, kBf16Tol, 2 * kBf16Tol);
  // Deterministic: the same backward again adds exactly the same bits.
  Tensor again = g.dqkv_before.clone(MemTag::other), twice = g.dqkv_before.clone(MemTag::other);
  attention_backward(again, g.dout, g.qkv, g.out, g.lse, g.shape);
  attention_backward(twice, g.dout, g.qkv, g.out, g.lse, g.shape);
  const Tensor a = to_cpu(again), b = to_cpu(twice);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << "attention backward is not deterministic";
#endif
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaAttentionTensorCores,
                         ::testing::Values(Case{2, 77, 4, 4, 64}, Case{1, 130, 8, 2, 128}, Case{2, 200, 6, 3, 64},
                                           Case{1, 64, 2, 1, 128}, Case{1, 9, 2, 2, 64}));

TEST(CudaAttentionDecode, MatchesTheCpuOverAGrowingCache) {
  ZT_REQUIRE_CUDA();
  const AttnShape s{1, 1, 8, 2, 64};
  const int64_t cap = 9, kv = s.n_kv_head * s.head_dim;
  Tensor kc = Tensor::zeros({cap, kv}, DType::f32), vc = Tensor::zeros({cap, kv}, DType::f32);
  Tensor gkc = to_gpu(kc), gvc = to_gpu(vc);
  for (int64_t pos = 0; pos < cap; ++pos) {
    const Tensor qkv = random_cpu({1, 1, s.qkv_width()}, 10 + static_cast<uint64_t>(pos));
    Tensor out = Tensor::empty({1, 512}, DType::f32), gout = to_gpu(out);
    attention_decode(out, qkv, kc, vc, pos, s);
    attention_decode(gout, to_gpu(qkv), gkc, gvc, pos, s);
    expect_close(out, gout, kF32Tol, "attention_decode pos " + std::to_string(pos));
  }
  expect_close(kc, gkc, 0, "k cache");
  expect_close(vc, gvc, 0, "v cache");
}

TEST(CudaRope, ForwardAndBackwardInF32AndBf16) {
  ZT_REQUIRE_CUDA();
  const AttnShape s{2, 19, 4, 2, 64};
  const Tensor table = rope_table(32, 64, 10000.f), gtable = to_gpu(table);
  for (DType t : {DType::f32, DType::bf16}) {
    Tensor x = random_cpu({2, 19, s.qkv_width()}, 20, 1.f, t), gx = to_gpu(x);
    rope_forward(x, table, s);
    rope_forward(gx, gtable, s);
    expect_close(x, gx, t == DType::f32 ? kF32Tol : kBf16Tol, std::string("rope_forward ") + std::string(dtype_name(t)));
  }
  Tensor d = random_cpu({2, 19, s.qkv_width()}, 21), gd = to_gpu(d);
  rope_backward(d, table, s);
  rope_backward(gd, gtable, s);
  expect_close(d, gd, kF32Tol, "rope_backward");
}

}  // namespace
}  // namespace zt::testing
