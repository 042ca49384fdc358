// bf16 GEMM (fp32 accumulation): the kernel of every ISA this CPU has against an f64
// reference for every transpose pair, shapes that cross each blocking edge (MR, NR, KC, MC,
// NC, odd K), row strides wider than the matrix, alpha/beta, thread-count invariance, and the
// weight-gradient form split by row blocks.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "core/cpu/gemm.h"
#include "core/dtype.h"

namespace zt {
namespace {

using GemmFn = std::function<void(bool, bool, int64_t, int64_t, int64_t, float, cpu::Bf16Operand, int64_t,
                                   cpu::Bf16Operand, int64_t, float, float*, int64_t)>;
struct Impl {
  std::string name;
  GemmFn fn;
};

// The kernel of every ISA this CPU runs (the AVX-512 widening one with each way of reading a
// bf16 A, whichever this CPU's is), and the dispatching entry point.
std::vector<Impl> impls() {
  std::vector<Impl> out;
  for (cpu::Isa isa : cpu::supported_isas())
    out.push_back({cpu::isa_name(isa), [isa](auto... args) { cpu::gemm_bf16_isa(isa, args...); }});
  if (cpu::cpu_supports(cpu::Isa::avx512))
    for (cpu::Bf16ARead read : {cpu::Bf16ARead::in_place, cpu::Bf16ARead::packed})
      out.push_back({read == cpu::Bf16ARead::packed ? "avx512, A packed" : "avx512, A in place", [read](auto... args) {
                       const cpu::ScopedBf16ARead forced(read);
                       cpu::gemm_bf16_isa(cpu::Isa::avx512, args...);
                     }});
  out.push_back({"dispatch", [](auto... args) { cpu::gemm_bf16(args...); }});
  return out;
}

std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(u(gen));
  return v;
}

struct Case {
  int64_t M, N, K;
};

// Runs one case with row strides pad wider than needed and checks every element of C against
// f64 within the fp32 accumulation bound K * 2^-23 * sum|a*b| (products of bf16 are exact).
// With nan_padding the values between rows are NaN: a kernel that reads past a row's end
// (a pair of k that would run one past an odd K) and multiplies what it finds by zero
// still gets NaN.
void check(const Impl& impl, bool ta, bool tb, Case c, float alpha, float beta, bool nan_padding = false) {
  const int64_t pad = 3;
  const int64_t a_rows = ta ? c.K : c.M, a_cols = ta ? c.M : c.K;
  const int64_t b_rows = tb ? c.N : c.K, b_cols = tb ? c.K : c.N;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = c.N + pad;
  auto A = random_bf16(size_t(a_rows * lda), 1), B = random_bf16(size_t(b_rows * ldb), 2);
  if (nan_padding) {
    const uint16_t nan = f32_to_bf16(std::numeric_limits<float>::quiet_NaN());
    for (int64_t r = 0; r < a_rows; ++r) std::fill(A.begin() + r * lda + a_cols, A.begin() + (r + 1) * lda, nan);
    for (int64_t r = 0; r < b_rows; ++r) std::fill(B.begin() + r * ldb + b_cols, B.begin() + (r + 1) * ldb, nan);
  }
  std::vector<float> C(size_t(c.M * ldc));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : C) x = beta == 0.f ? std::numeric_limits<float>::quiet_NaN() : u(gen);
  const std::vector<float> C0 = C;
  impl.fn(ta, tb, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  int misses = 0;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = bf16_to_f32(ta ? A[k * lda + i] : A[i * lda + k]);
        const double b = bf16_to_f32(tb ? B[j * ldb + k] : B[k * ldb + j]);
        s += a * b;
        mag += std::fabs(a * b);
      }
      const double want = alpha * s + (beta != 0.f ? beta * double(C0[i * ldc + j]) : 0.0);
      const double tol = std::fabs(alpha) * (double(c.K) * 0x1p-23 * mag) + 1e-6 * (1 + std::fabs(want));
      const double got = C[i * ldc + j];
      if (!(std::fabs(got - want) <= tol) && ++misses <= 5)
        ADD_FAILURE() << impl.name << " C[" << i << "," << j << "] = " << got << ", want " << want;
    }
  EXPECT_EQ(misses, 0);
  // The padding columns of C are never written.
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) {
      if (beta != 0.f) EXPECT_EQ(C[i * ldc + j], C0[i * ldc + j]);
      else EXPECT_TRUE(std::isnan(C[i * ldc + j]));
    }
}

TEST(GemmBf16, EveryTransposeAndBlockEdgeMatchesF64) {
  const std::vector<Case> cases = {
      {1, 1, 1},      {7, 10, 12},  // far below one micro-tile
      {13, 65, 385},                // one past MR, NR and AVX-512's KC (384); odd K
      {300, 70, 777},               // crosses MC in each of 2 threads' strips; odd K, 3 or 4 KC blocks
      {5, 3137, 40},                // crosses NC
      {11, 90, 50},   {11, 100, 50},  // AVX-512's last panels of 26 and 36 columns: 2 and 3 vectors wide
      {128, 70, 300}, {40, 70, 300},  // last panels of 2 and 4 rows, of which AVX-512 computes only those
  };
  for (const Impl& impl : impls()) {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const Case& c : cases) {
          SCOPED_TRACE(::testing::Message() << impl.name << " ta " << ta << " tb " << tb << " M " << c.M
                                            << " N " << c.N << " K " << c.K);
          check(impl, ta, tb, c, 1.f, 0.f);
        }
  }
}

// Odd K (the bf16-pair kernel's last pair holds one k), K blocks that end odd, and NaN
// just past every row of A and B.
TEST(GemmBf16, NothingPastAnOperandsRowReachesC) {
  const std::vector<Case> cases = {{1, 1, 1}, {7, 10, 3}, {13, 65, 385}, {20, 130, 769}};
  for (const Impl& impl : impls())
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const Case& c : cases) {
          SCOPED_TRACE(::testing::Message() << impl.name << " ta " << ta << " tb " << tb << " M " << c.M
                                            << " N " << c.N << " K " << c.K);
          check(impl, ta, tb, c, 1.f, 0.f, /*nan_padding=*/true);
        }
}

TEST(GemmBf16, AlphaScalesAndBetaAccumulates) {
  for (const Impl& impl : impls()) {
    for (auto [alpha, beta] : {std::pair{0.5f, 1.f}, {-2.f, 0.25f}, {1.f, 1.f}}) {
      SCOPED_TRACE(::testing::Message() << impl.name << " alpha " << alpha << " beta " << beta);
      check(impl, false, true, {13, 65, 777}, alpha, beta);
      check(impl, true, false, {13, 65, 777}, alpha, beta);
    }
  }
}

// fp32 operands rounded while packing must give bitwise the product of operands converted
// first with f32_to_bf16: ties to even, values just below a tie, and NaN. (With AVX-512 it
// is also the packed A against the bf16 A read in place: in one tile, and across MC and
// three KC blocks.)
TEST(GemmBf16, Fp32OperandsRoundExactlyAsConversion) {
  for (const std::array<int64_t, 3>& shape : {std::array<int64_t, 3>{37, 70, 45}, std::array<int64_t, 3>{130, 70, 800}}) {
    const int64_t M = shape[0], N = shape[1], K = shape[2];
    SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " K " << K);
    std::mt19937 gen(9);
    std::uniform_real_distribution<float> u(-4.f, 4.f);
    auto make = [&](int64_t n) {
      std::vector<float> f(static_cast<size_t>(n));
      for (size_t i = 0; i < f.size(); ++i) {
        uint32_t bits = std::bit_cast<uint32_t>(u(gen));
        if (i % 3 == 0) bits = (bits & 0xFFFF0000u) | 0x8000u;  // an exact tie
        if (i % 3 == 1) bits = (bits & 0xFFFF0000u) | 0x7FFFu;  // just below a tie
        f[i] = std::bit_cast<float>(bits);
      }
      return f;
    };
    std::vector<float> a = make(M * K), b = make(K * N);
    a[5] = std::numeric_limits<float>::quiet_NaN();  // row 0 of C becomes NaN either way
    auto to_bf16 = [](const std::vector<float>& f) {
      std::vector<uint16_t> h(f.size());
      for (size_t i = 0; i < f.size(); ++i) h[i] = f32_to_bf16(f[i]);
      return h;
    };
    const std::vector<uint16_t> ah = to_bf16(a), bh = to_bf16(b);
    for (const Impl& impl : impls())
      for (bool trans : {false, true}) {  // trans: the same products with A and B read transposed
        SCOPED_TRACE(::testing::Message() << impl.name << " trans " << trans);
        std::vector<float> from_f32(size_t(M * N)), from_bf16(size_t(M * N));
        impl.fn(trans, trans, M, N, K, 1.f, cpu::Bf16Operand::rounded(a.data()), trans ? M : K,
                cpu::Bf16Operand::rounded(b.data()), trans ? K : N, 0.f, from_f32.data(), N);
        impl.fn(trans, trans, M, N, K, 1.f, ah.data(), trans ? M : K, bh.data(), trans ? K : N, 0.f, from_bf16.data(), N);
        EXPECT_EQ(std::memcmp(from_f32.data(), from_bf16.data(), from_f32.size() * sizeof(float)), 0);
        if (!trans) {
          EXPECT_TRUE(std::isnan(from_f32[0]));
          EXPECT_FALSE(std::isnan(from_f32[N]));
        }
      }
  }
}

// Each C tile is summed by one thread in one K order, so the result cannot depend on threads.
// The second shape (few C tiles, a deep K) is where a library could split K among threads.
TEST(GemmBf16, ResultIsBitwiseIndependentOfThreadCount) {
  const int saved = omp_get_max_threads();
  for (const Case c : {Case{150, 300, 500}, Case{32, 48, 8192}}) {
    const auto A = random_bf16(size_t(c.M * c.K), 4), B = random_bf16(size_t(c.N * c.K), 5);
    for (const Impl& impl : impls()) {
      SCOPED_TRACE(::testing::Message() << impl.name << " M " << c.M << " N " << c.N << " K " << c.K);
      std::vector<float> one(size_t(c.M * c.N)), many(size_t(c.M * c.N));
      omp_set_num_threads(1);
      impl.fn(false, true, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.K, 0.f, one.data(), c.N);
      omp_set_num_threads(3);
      impl.fn(false, true, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.K, 0.f, many.data(), c.N);
      EXPECT_EQ(one, many);
    }
  }
  omp_set_num_threads(saved);
}

// At AMX a product's batch rows (M of a forward or input-gradient product, K of a weight
// gradient) are cut into at most three products of few shapes (gemm_amx.cpp), since oneDNN
// JIT-compiles a primitive per shape and an MoE expert's row count changes every step: every
// row count from 1 to 600 builds at most 2 + 15 + 15 primitives for the forward, not 600, and
// twice that for the weight gradient (a cut that follows another adds onto C: beta 1, not the
// call's), and every product matches the f64 sum.
TEST(GemmBf16, AmxCutsRowCountsIntoFewShapes) {
  if (!cpu::cpu_supports(cpu::Isa::amx)) GTEST_SKIP() << "no AMX on this CPU";
  const int64_t N = 24, D = 40, rows_max = 600;
  const auto X = random_bf16(size_t(rows_max * D), 31), W = random_bf16(size_t(N * D), 32);
  const auto G = random_bf16(size_t(rows_max * N), 33);
  for (bool weight_gradient : {false, true}) {
    SCOPED_TRACE(weight_gradient ? "weight gradient (K = rows)" : "forward (M = rows)");
    const int64_t before = cpu::amx_primitives_built();
    int misses = 0;
    for (int64_t rows = 1; rows <= rows_max; ++rows) {
      // forward: C (rows, N) = X W^T; weight gradient: C (N, D) = 0.5 C + G^T X.
      const int64_t M = weight_gradient ? N : rows, n = weight_gradient ? D : N, K = weight_gradient ? rows : D;
      std::vector<float> C(size_t(M * n), 0.25f);
      const float beta = weight_gradient ? 0.5f : 0.f;
      if (weight_gradient)
        cpu::gemm_bf16_isa(cpu::Isa::amx, true, false, M, n, K, 1.f, G.data(), N, X.data(), D, beta, C.data(), n);
      else
        cpu::gemm_bf16_isa(cpu::Isa::amx, false, true, M, n, K, 1.f, X.data(), D, W.data(), D, beta, C.data(), n);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double want = beta * 0.25, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double p = weight_gradient ? double(bf16_to_f32(G[k * N + i])) * bf16_to_f32(X[k * D + j])
                                             : double(bf16_to_f32(X[i * D + k])) * bf16_to_f32(W[j * D + k]);
            want += p;
            mag += std::fabs(p);
          }
          if (!(std::fabs(C[i * n + j] - want) <= double(K) * 0x1p-23 * mag + 1e-6) && ++misses <= 5)
            ADD_FAILURE() << "rows " << rows << " C[" << i << "," << j << "] = " << C[i * n + j] << ", want " << want;
        }
    }
    EXPECT_EQ(misses, 0);
    EXPECT_LE(cpu::amx_primitives_built() - before, (weight_gradient ? 2 : 1) * (2 + 15 + 15));
  }
}

// One GEMM at AMX built for the process's threads, then the same GEMM built for one thread
// (a weight gradient's row blocks run one product per thread inside a parallel region): each
// runs its own primitive with a scratchpad of that primitive's size. oneDNN's own primitive
// cache keys a matmul without the threads it was planned for; it handed the 2-thread primitive
// to the 1-thread build, which overran the scratchpad sized for one (and corrupted the heap).
TEST(GemmBf16, AmxOneThreadBuildOfAGemmAlsoBuiltForTwoRunsItsOwnPlan) {
  if (!cpu::cpu_supports(cpu::Isa::amx)) GTEST_SKIP() << "no AMX on this CPU";
  const int saved = omp_get_max_threads();
  const cpu::ScopedIsa forced(cpu::Isa::amx);
  const int64_t M = 24, N = 40, rows = 288;  // two row blocks of 144, which 2 threads also run whole
  const auto A = random_bf16(size_t(rows * M), 41), B = random_bf16(size_t(rows * N), 42);
  std::vector<double> want(size_t(M * N), 0.0);
  for (int64_t k = 0; k < rows; ++k)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        want[i * N + j] += double(bf16_to_f32(A[k * M + i])) * bf16_to_f32(B[k * N + j]);
  omp_set_num_threads(2);
  for (int round = 0; round < 20; ++round) {
    // Each block's product at 2 threads, then both blocks at once at one thread each.
    std::vector<float> C(size_t(M * N), 0.f), partials(size_t(M * N));
    for (int64_t k0 : {int64_t{0}, rows / 2})
      cpu::gemm_bf16_isa(cpu::Isa::amx, true, false, M, N, rows / 2, 1.f, A.data() + k0 * M, M, B.data() + k0 * N, N,
                         1.f, C.data(), N);
    std::vector<float> by_blocks(size_t(M * N), 0.f);
    cpu::gemm_bf16_tn_row_blocks(M, N, rows, A.data(), M, B.data(), N, 1.f, by_blocks.data(), N, partials.data());
    for (int64_t i = 0; i < M * N; ++i) {
      ASSERT_NEAR(C[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "round " << round << " at " << i;
      ASSERT_NEAR(by_blocks[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "round " << round << " at " << i;
    }
    std::vector<std::vector<char>> churn(64);  // allocations a corrupted heap would trip over
    for (size_t b = 0; b < churn.size(); ++b) churn[b].resize(1000 + 997 * b);
  }
  EXPECT_EQ(dnnl::get_primitive_cache_capacity(), 0) << "oneDNN's primitive cache is on: it may hand a primitive "
                                                        "planned for other threads to a build";
  omp_set_num_threads(saved);
}

// With AMX, a beta-0 product gives what beta 1 onto zeros gives, whatever C held (NaN
// included): where it runs as zeroing C and adding onto it (A transposed, or C's rows not a
// multiple of 16 floats, with C contiguous and past 1M elements: gemm_amx.cpp), and with
// padding between C's rows, which it leaves as it was.
TEST(GemmBf16, AmxBetaZeroIgnoresWhatCHeld) {
  if (!cpu::cpu_supports(cpu::Isa::amx)) GTEST_SKIP() << "no AMX on this CPU";
  const cpu::ScopedIsa forced(cpu::Isa::amx);
  struct Shape {
    bool ta;
    int64_t M, N, K, ldc;
  };
  for (const Shape s : {Shape{true, 1100, 1000, 40, 1000}, Shape{false, 70, 16411, 48, 16411},
                        Shape{true, 1030, 1024, 24, 1027}}) {
    SCOPED_TRACE(::testing::Message() << "ta " << s.ta << " " << s.M << " x " << s.N << " x " << s.K << " ldc " << s.ldc);
    const int64_t lda = s.ta ? s.M : s.K;
    const auto A = random_bf16(size_t(s.M * s.K), 51), B = random_bf16(size_t(s.N * s.K), 52);
    std::vector<float> want(size_t(s.M * s.ldc), 0.f);
    cpu::gemm_bf16(s.ta, true, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), s.K, 1.f, want.data(), s.ldc);
    std::vector<float> got(size_t(s.M * s.ldc), std::numeric_limits<float>::quiet_NaN());
    for (int64_t i = 0; i < s.M; ++i) std::fill_n(got.begin() + i * s.ldc + s.N, s.ldc - s.N, 7.f);
    cpu::gemm_bf16(s.ta, true, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), s.K, 0.f, got.data(), s.ldc);
    int misses = 0;
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.ldc; ++j) {
        const float expect = j < s.N ? want[i * s.ldc + j] : 7.f;
        if (!(got[i * s.ldc + j] == expect) && ++misses <= 3)
          ADD_FAILURE() << "C[" << i << "," << j << "] = " << got[i * s.ldc + j] << ", want " << expect;
      }
    EXPECT_EQ(misses, 0);
  }
}

// The AVX-512 kernel's two ways of reading a bf16 A (widened as broadcast, or packed widened)
// feed the same micro-kernel the same values in the same K order: the same bits, at every
// transpose, and the forced way is restored afterwards.
TEST(GemmBf16, Avx512ReadsOfABothGiveTheSameBits) {
  if (!cpu::cpu_supports(cpu::Isa::avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const cpu::Bf16ARead own = cpu::avx512_bf16_a_read();
  const Case c{37, 150, 800};  // partial tiles and panels, two K blocks
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb);
      const int64_t lda = (ta ? c.M : c.K) + 3, ldb = (tb ? c.K : c.N) + 3;
      const auto A = random_bf16(size_t((ta ? c.K : c.M) * lda), 21), B = random_bf16(size_t((tb ? c.N : c.K) * ldb), 22);
      std::vector<float> in_place(size_t(c.M * c.N)), packed(size_t(c.M * c.N));
      for (auto [read, out] : {std::pair{cpu::Bf16ARead::in_place, &in_place}, std::pair{cpu::Bf16ARead::packed, &packed}}) {
        const cpu::ScopedBf16ARead forced(read);
        EXPECT_EQ(cpu::avx512_bf16_a_read(), read);
        cpu::gemm_bf16_isa(cpu::Isa::avx512, ta, tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, out->data(),
                           c.N);
      }
      EXPECT_EQ(in_place, packed);
    }
  EXPECT_EQ(cpu::avx512_bf16_a_read(), own);
}

// The weight-gradient GEMM split by rows: at 1-3 threads (one block per thread, K = 2 with 3
// threads: two blocks of one row) and every ISA, C gains the f64 sum within fp32's bound, and
// bitwise what the blocks' own products give, block 0 onto C and the others added in block
// order. The partials start as NaN: they are written before they are read. With beta 0, C
// starts as NaN too (a stale gradient): it is written, never read.
TEST(GemmBf16, RowBlocksAddEachBlocksProductInBlockOrder) {
  const int saved = omp_get_max_threads();
  const int64_t M = 70, N = 45, pad = 3, lda = M + pad, ldb = N + 1, ldc = N + 2;
  for (cpu::Isa isa : cpu::supported_isas())
    for (int threads : {1, 2, 3})
      for (int64_t K : {int64_t{2}, int64_t{301}, int64_t{900}})
        for (float beta : {1.f, 0.f}) {
        SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " threads " << threads << " K " << K << " beta "
                                          << beta);
        const cpu::ScopedIsa forced(isa);
        omp_set_num_threads(threads);
        const auto A = random_bf16(size_t(K * lda), 11), B = random_bf16(size_t(K * ldb), 12);
        std::vector<float> C(size_t(M * ldc));
        for (size_t i = 0; i < C.size(); ++i) C[i] = 0.25f * float(i % 7) - 0.5f;
        if (beta == 0.f)
          for (int64_t i = 0; i < M; ++i) std::fill_n(C.begin() + i * ldc, N, std::numeric_limits<float>::quiet_NaN());
        const std::vector<float> C0 = C;
        const int blocks = std::min<int>(threads, int(K));
        std::vector<float> partials(size_t(std::max(blocks - 1, 0) * M * N), std::numeric_limits<float>::quiet_NaN());
        cpu::gemm_bf16_tn_row_blocks(M, N, K, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, partials.data());

        // Bitwise: each block's product through gemm_bf16 (rows K b / blocks on), in block order.
        std::vector<float> want = C0, part(size_t(M * N));
        for (int blk = 0; blk < blocks; ++blk) {
          const int64_t begin = K * blk / blocks, rows = K * (blk + 1) / blocks - begin;
          const cpu::Bf16Operand a(A.data() + begin * lda), b(B.data() + begin * ldb);
          omp_set_num_threads(1);
          if (blk == 0) {
            cpu::gemm_bf16(true, false, M, N, rows, 1.f, a, lda, b, ldb, beta, want.data(), ldc);
            continue;
          }
          cpu::gemm_bf16(true, false, M, N, rows, 1.f, a, lda, b, ldb, 0.f, part.data(), N);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) want[i * ldc + j] += part[i * N + j];
        }
        int misses = 0, off_reference = 0;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            const float got = C[i * ldc + j];
            if (std::bit_cast<uint32_t>(got) != std::bit_cast<uint32_t>(want[i * ldc + j]) && ++misses <= 3)
              ADD_FAILURE() << "C[" << i << "," << j << "] = " << got << ", blocks give " << want[i * ldc + j];
            double s = beta == 0.f ? 0.0 : C0[i * ldc + j], mag = std::fabs(s);
            for (int64_t k = 0; k < K; ++k) {
              const double p = double(bf16_to_f32(A[k * lda + i])) * bf16_to_f32(B[k * ldb + j]);
              s += p;
              mag += std::fabs(p);
            }
            if (!(std::fabs(got - s) <= double(K + 1) * 0x1p-23 * mag + 1e-6) && ++off_reference <= 3)
              ADD_FAILURE() << "C[" << i << "," << j << "] = " << got << ", f64 " << s;
          }
        EXPECT_EQ(misses, 0);
        EXPECT_EQ(off_reference, 0);
        for (int64_t i = 0; i < M; ++i)  // the padding between C's rows is not written
          for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], C0[i * ldc + j]);
      }
  omp_set_num_threads(saved);
}

// The entry point runs the kernel of the active ISA: bitwise that kernel's result.
TEST(GemmBf16, DispatchRunsTheActiveIsasKernel) {
  const int64_t M = 40, N = 70, K = 300;
  const auto A = random_bf16(size_t(M * K), 6), B = random_bf16(size_t(K * N), 7);
  for (cpu::Isa isa : cpu::supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    const cpu::ScopedIsa forced(isa);
    ASSERT_EQ(cpu::active_isa(), isa);
    std::vector<float> direct(size_t(M * N)), dispatched(size_t(M * N));
    cpu::gemm_bf16_isa(isa, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, direct.data(), N);
    cpu::gemm_bf16(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, dispatched.data(), N);
    EXPECT_EQ(direct, dispatched);
  }
}

// The epilogue (bias on every row, bf16 output) gives bitwise what the separate bias pass and
// conversion give, at every ISA, K within and past one packed block (KC), and at 1 and 3
// threads (column and row strips). A NaN column checks the rounding keeps NaN a NaN.
TEST(GemmBf16, EpilogueEqualsTheBiasPassAndConversion) {
  const int saved = omp_get_max_threads();
  for (cpu::Isa isa : cpu::supported_isas())
    for (const Case& c : {Case{37, 70, 100}, Case{150, 300, 600}, Case{600, 20, 300}})
      for (int threads : {1, 3})
        for (bool to_bf16 : {false, true}) {
          SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " M " << c.M << " N " << c.N << " K " << c.K
                                            << " threads " << threads << " bf16 out " << to_bf16);
          omp_set_num_threads(threads);
          const int64_t ldo = c.N + 5;
          const auto A = random_bf16(size_t(c.M * c.K), 8), B = random_bf16(size_t(c.N * c.K), 9);
          std::vector<float> bias(size_t(c.N));
          for (int64_t j = 0; j < c.N; ++j) bias[j] = 0.01f * float(j % 13) - 0.05f;
          bias[3] = std::numeric_limits<float>::quiet_NaN();
          std::vector<float> want(size_t(c.M * c.N)), got(size_t(c.M * c.N));
          cpu::gemm_bf16_isa(isa, false, true, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.K, 0.f, want.data(),
                             c.N);
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) want[i * c.N + j] += bias[j];
          std::vector<uint16_t> out(size_t(c.M * ldo), 0xBEEF);
          cpu::Epilogue e;
          e.bias = bias.data();
          if (to_bf16) e.bf16_out = out.data(), e.ldo = ldo;
          cpu::gemm_bf16_isa(isa, false, true, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.K, 0.f, got.data(), c.N,
                             e);
          int misses = 0;
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) {
              const bool same = to_bf16 ? out[i * ldo + j] == f32_to_bf16(want[i * c.N + j])
                                        : std::bit_cast<uint32_t>(got[i * c.N + j]) ==
                                              std::bit_cast<uint32_t>(want[i * c.N + j]);
              if (!same && ++misses <= 3) ADD_FAILURE() << "C[" << i << "," << j << "] differs";
            }
          EXPECT_EQ(misses, 0);
          if (to_bf16) {  // the padding between rows is never written
            for (int64_t i = 0; i < c.M; ++i) ASSERT_EQ(out[i * ldo + c.N], 0xBEEF);
          }
        }
  omp_set_num_threads(saved);
}

// The same kernels on fp32 operands as they are: full fp32 values (not bf16-representable),
// so a kernel that rounded them would miss the fp32 accumulation bound by ~2^-9 relative.
TEST(SgemmBlocked, EveryIsaAndTransposeMatchesF64) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (cpu::Isa isa : cpu::supported_isas())
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const Case& c : {Case{7, 10, 12}, Case{13, 65, 385}, Case{197, 70, 777}, Case{11, 90, 50}, Case{11, 100, 50}}) {
          SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " ta " << ta << " tb " << tb << " M " << c.M
                                            << " N " << c.N << " K " << c.K);
          std::vector<float> A(size_t(c.M * c.K)), B(size_t(c.K * c.N)), C(size_t(c.M * c.N), 1.f);
          for (auto& x : A) x = u(gen);
          for (auto& x : B) x = u(gen);
          const int64_t lda = ta ? c.M : c.K, ldb = tb ? c.K : c.N;
          cpu::sgemm_blocked_isa(isa, ta, tb, c.M, c.N, c.K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, C.data(), c.N);
          int misses = 0;
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) {
              double s = 0, mag = 0;
              for (int64_t k = 0; k < c.K; ++k) {
                const double a = ta ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)];
                const double b = tb ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)];
                s += a * b;
                mag += std::fabs(a * b);
              }
              const double want = 0.5 * s + 2.0, got = C[size_t(i * c.N + j)];
              if (!(std::fabs(got - want) <= double(c.K) * 0x1p-23 * mag + 1e-6) && ++misses <= 3)
                ADD_FAILURE() << "C[" << i << "," << j << "] = " << got << ", want " << want;
            }
          EXPECT_EQ(misses, 0);
        }
}

// The fp32 entry point runs our blocked kernel with AVX2 active and oneDNN (sgemm_small)
// otherwise: bitwise the chosen one's result, for each ISA this CPU has.
TEST(SgemmBlocked, Fp32DispatchRunsTheBlockedKernelOnlyWithAvx2) {
  const int64_t M = 40, N = 70, K = 1000;  // several K blocks: the two kernels' sums differ (on Zen 5 at each ISA)
  std::mt19937 gen(12);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A(size_t(M * K)), B(size_t(K * N));
  for (auto& x : A) x = u(gen);
  for (auto& x : B) x = u(gen);
  for (cpu::Isa isa : cpu::supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    const cpu::ScopedIsa forced(isa);
    std::vector<float> blocked(size_t(M * N)), onednn(size_t(M * N)), dispatched(size_t(M * N));
    cpu::sgemm_blocked_isa(isa, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, blocked.data(), N);
    cpu::sgemm_small(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, onednn.data(), N);
    cpu::sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, dispatched.data(), N);
    EXPECT_EQ(dispatched, isa == cpu::Isa::avx2 ? blocked : onednn);
  }
}

}  // namespace
}  // namespace zt
