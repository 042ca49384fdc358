// Token + position embeddings: gather against a reference, scatter-add with repeated token
// ids (finite differences and an exact reference), accumulation, determinism, bad ids.
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t C = 12, V = 6, T = 5;

Tensor token_tensor(const std::vector<int32_t>& ids) {
  Tensor t = Tensor::empty({static_cast<int64_t>(ids.size())}, DType::i32);
  std::copy(ids.begin(), ids.end(), t.data<int32_t>());
  return t;
}

// Two sequences of T = 5; token 2 appears five times, 4 twice, 1 never.
const std::vector<int32_t> kIds = {2, 4, 2, 0, 2, 5, 2, 3, 4, 2};

TEST(KernelEmbeddingCases, ForwardGathersTokenAndPositionRows) {
  Tensor tokens = token_tensor(kIds);
  const int64_t n = tokens.numel();
  Tensor wte = random_tensor({V, C}, 1), wpe = random_tensor({T + 3, C}, 2);  // maxT > T
  Tensor y = Tensor::empty({2, T, C}, DType::f32);
  embedding_forward(y, tokens, wte, &wpe, T);
  std::vector<double> ref(n * C), ref_nopos(n * C);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      ref_nopos[r * C + c] = f32(wte)[kIds[r] * C + c];
      ref[r * C + c] = double(f32(wte)[kIds[r] * C + c]) + f32(wpe)[(r % T) * C + c];
    }
  expect_matches(y, ref, 1e-7, 0, "with positions");
  embedding_forward(y, tokens, wte, nullptr, T);
  expect_matches(y, ref_nopos, 0, 0, "without positions");
}

TEST(KernelEmbeddingCases, BackwardScattersRepeatedTokens) {
  Tensor tokens = token_tensor(kIds);
  const int64_t n = tokens.numel();
  Tensor wte = random_tensor({V, C}, 3), wpe = random_tensor({T, C}, 4);
  Tensor y = Tensor::empty({n, C}, DType::f32), proj = random_tensor({n, C}, 5);
  Tensor dwte = Tensor::zeros({V, C}, DType::f32), dwpe = Tensor::zeros({T, C}, DType::f32);
  embedding_backward(dwte, &dwpe, proj, tokens, T);

  std::vector<double> rte(V * C, 0), rpe(T * C, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      rte[kIds[r] * C + c] += f32(proj)[r * C + c];
      rpe[(r % T) * C + c] += f32(proj)[r * C + c];
    }
  expect_matches(dwte, rte, 1e-6, 1e-6, "dwte");  // row 1 (never seen) stays 0
  expect_matches(dwpe, rpe, 1e-6, 1e-6, "dwpe");

  auto loss = [&] { embedding_forward(y, tokens, wte, &wpe, T); return project(y, proj); };
  expect_grad_close(loss, wte, dwte, "dwte", all_elements(wte, 1e-2, 1e-3, 1e-4));
  expect_grad_close(loss, wpe, dwpe, "dwpe", all_elements(wpe, 1e-2, 1e-3, 1e-4));

  Tensor te1 = copy_of(dwte), pe1 = copy_of(dwpe);
  embedding_backward(dwte, &dwpe, proj, tokens, T);
  expect_doubled(dwte, te1, "dwte");
  expect_doubled(dwpe, pe1, "dwpe");

  Tensor dwte_only = Tensor::zeros({V, C}, DType::f32);
  embedding_backward(dwte_only, nullptr, proj, tokens, T);
  EXPECT_TRUE(bitwise_equal(dwte_only, te1));
}

TEST(KernelEmbeddingCases, ManyRepeatsAtModelWidthAreExactAndDeterministic) {
  // 4096 rows over 3 distinct ids: any race in the scatter would lose updates.
  const int64_t n = 4096, c = 768, t = 64, v = 3;
  std::vector<int32_t> ids(n);
  for (int64_t r = 0; r < n; ++r) ids[r] = static_cast<int32_t>((r * r + 1) % v);
  Tensor tokens = token_tensor(ids);
  Tensor g = Tensor::empty({n, c}, DType::f32);
  for (int64_t i = 0; i < g.numel(); ++i) f32(g)[i] = static_cast<float>((i * 37) % 11) - 5.f;  // integers: sums are exact
  Tensor a = Tensor::zeros({v, c}, DType::f32), pa = Tensor::zeros({t, c}, DType::f32);
  Tensor b = Tensor::zeros({v, c}, DType::f32), pb = Tensor::zeros({t, c}, DType::f32);
  embedding_backward(a, &pa, g, tokens, t);
  embedding_backward(b, &pb, g, tokens, t);
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_TRUE(bitwise_equal(pa, pb));
  std::vector<double> rte(v * c, 0), rpe(t * c, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < c; ++j) {
      rte[ids[r] * c + j] += f32(g)[r * c + j];
      rpe[(r % t) * c + j] += f32(g)[r * c + j];
    }
  expect_matches(a, rte, 0, 0, "dwte");
  expect_matches(pa, rpe, 0, 0, "dwpe");
}

TEST(KernelEmbeddingCases, RejectsOutOfRangeTokensAndBadShapes) {
  Tensor wte = random_tensor({V, C}, 6), wpe = random_tensor({T, C}, 7);
  Tensor y = Tensor::empty({T, C}, DType::f32);
  Tensor too_big = token_tensor({0, 1, 2, 3, static_cast<int32_t>(V)});
  EXPECT_NE(error_of([&] { embedding_forward(y, too_big, wte, &wpe, T); }), "(no error)");
  Tensor negative = token_tensor({0, -1, 2, 3, 4});
  EXPECT_NE(error_of([&] { embedding_forward(y, negative, wte, &wpe, T); }), "(no error)");
  Tensor dwte = Tensor::zeros({V, C}, DType::f32);
  EXPECT_NE(error_of([&] { embedding_backward(dwte, nullptr, y, too_big, T); }), "(no error)");
  Tensor ok = token_tensor({0, 1, 2, 3, 4});
  Tensor short_wpe = random_tensor({T - 1, C}, 8);
  EXPECT_NE(error_of([&] { embedding_forward(y, ok, wte, &short_wpe, T); }), "(no error)");
  Tensor narrow_wpe = random_tensor({T, C - 1}, 9);
  EXPECT_NE(error_of([&] { embedding_forward(y, ok, wte, &narrow_wpe, T); }), "(no error)");
  EXPECT_EQ(error_of([&] { embedding_forward(y, ok, wte, &wpe, T); }), "(no error)");
}

}  // namespace
}  // namespace zt
