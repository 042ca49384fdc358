// fill / add_inplace / axpy / scale_inplace / sum_squares / convert against references,
// conversion round trips and special values, determinism and dtype checks.
#include <omp.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/ops.h"
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t kN = 100003;  // odd: exercises vector tails

TEST(KernelElementwiseCases, FillAddAxpyScaleMatchReference) {
  Tensor y = random_tensor({kN}, 1), x = random_tensor({7, kN / 7 + 1}, 2);
  Tensor x_flat = x.view(0, {kN});
  Tensor y0 = copy_of(y);
  add_inplace(y, x_flat);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(f32(y)[i], f32(y0)[i] + f32(x)[i]) << i;
  Tensor ymid = copy_of(y);
  axpy(y, -0.75f, x_flat);
  for (int64_t i = 0; i < kN; ++i) {
    const double want = double(f32(ymid)[i]) - 0.75 * f32(x)[i];  // one f32 rounding (or FMA)
    const double scale = std::fabs(f32(ymid)[i]) + 0.75 * std::fabs(f32(x)[i]);
    ASSERT_NEAR(f32(y)[i], want, 1.2e-7 * scale) << i;
  }
  Tensor y1 = copy_of(y);
  scale_inplace(y, 0.3f);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(f32(y)[i], f32(y1)[i] * 0.3f) << i;
  fill(y, -2.5f);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(f32(y)[i], -2.5f) << i;
  Tensor wrong = random_tensor({kN - 1}, 3);
  EXPECT_NE(error_of([&] { axpy(y, 1.f, wrong); }), "(no error)");
  EXPECT_NE(error_of([&] { add_inplace(y, wrong); }), "(no error)");
  Tensor half = Tensor::empty({kN}, DType::bf16);
  EXPECT_NE(error_of([&] { scale_inplace(half, 2.f); }), "(no error)");
  EXPECT_NE(error_of([&] { axpy(y, 1.f, half); }), "(no error)");
}

// Fills of 32 MiB and more stream their stores (cpu::fill): every value is written, from an
// unaligned start to an odd end, at any thread count, and nothing around the range is.
TEST(KernelElementwiseCases, LargeFillWritesExactlyItsRangeAtAnyThreadCount) {
  const int saved = omp_get_max_threads();
  const int64_t n = (int64_t{32} << 20) / 4 + 4099;  // past the streaming size, odd
  Tensor whole = Tensor::empty({n + 2}, DType::f32);
  Tensor range = whole.view(1, {n});  // 4 bytes past an aligned start
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    omp_set_num_threads(threads);
    for (int64_t i = 0; i < n + 2; ++i) f32(whole)[i] = 7.f;
    const float value = -1.5f * static_cast<float>(threads);
    fill(range, value);
    EXPECT_EQ(f32(whole)[0], 7.f);
    EXPECT_EQ(f32(whole)[n + 1], 7.f);
    int64_t wrong = 0;
    for (int64_t i = 1; i <= n; ++i) wrong += f32(whole)[i] != value;
    EXPECT_EQ(wrong, 0) << "values the fill did not write";
  }
  omp_set_num_threads(saved);
}

TEST(KernelElementwiseCases, SumSquaresMatchesF64AndIgnoresThreadCount) {
  const int64_t n = 1000003;
  Tensor x = random_tensor({n}, 4, 3.f);
  f32(x)[17] = 1e4f;  // one large element among small ones
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += double(f32(x)[i]) * f32(x)[i];
  const double got = sum_squares(x);
  EXPECT_NEAR(got, ref, 1e-12 * ref);
  EXPECT_EQ(got, sum_squares(x));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = sum_squares(x);
  omp_set_num_threads(3);
  const double three = sum_squares(x);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, got);
  EXPECT_EQ(three, got);
  EXPECT_EQ(sum_squares(Tensor::zeros({0}, DType::f32)), 0.0);
  // The fixed order: chunks of 2^16 values, each summed alone, added in chunk order, however
  // many chunks a thread takes at once. With one chunk non-zero the total is that chunk's
  // sum, which must be bitwise what the chunk alone gives, for every chunk of six (taken four
  // and two at once, the last one short). Magnitudes from 2^-20 to 2^20 make the f64 sums
  // round, so a different order shows.
  constexpr int64_t kChunk = int64_t{1} << 16, m = 5 * kChunk + 1234;
  Tensor wide = Tensor::zeros({m}, DType::f32);
  for (int64_t c = 0; c < m; c += kChunk) {
    SCOPED_TRACE("chunk at " + std::to_string(c));
    const int64_t len = std::min(kChunk, m - c);
    wide.zero_();
    for (int64_t i = c; i < c + len; ++i)
      f32(wide)[i] = std::ldexp(f32(x)[i % n], static_cast<int>(i * 7919 % 41) - 20);
    EXPECT_EQ(sum_squares(wide), sum_squares(wide.view(c, {len})));
  }
}

// The accumulating sums add to what total holds: the first call is sum_squares' (or the
// plain f64 sum's) value, a second adds it again; a total that is not one f64 is refused.
TEST(KernelElementwiseCases, SumAccumulateAddsTheF64SumToTheTotal) {
  const int64_t n = 10007;
  Tensor x = random_tensor({n}, 6, 2.f);
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += f32(x)[i];
  Tensor total = Tensor::zeros({1}, DType::f64);
  total.data<double>()[0] = 0.5;
  sum_accumulate(total, x);
  EXPECT_EQ(total.data<double>()[0], 0.5 + ref);
  Tensor squares = Tensor::zeros({1}, DType::f64);
  sum_squares_accumulate(squares, x);
  EXPECT_EQ(squares.data<double>()[0], sum_squares(x));
  sum_squares_accumulate(squares, x);
  EXPECT_EQ(squares.data<double>()[0], sum_squares(x) + sum_squares(x));
  sum_accumulate(squares, Tensor::zeros({0}, DType::f32));
  EXPECT_EQ(squares.data<double>()[0], sum_squares(x) + sum_squares(x));
  Tensor two = Tensor::zeros({2}, DType::f64), f32_total = Tensor::zeros({1}, DType::f32);
  EXPECT_NE(error_of([&] { sum_accumulate(two, x); }), "(no error)");
  EXPECT_NE(error_of([&] { sum_squares_accumulate(f32_total, x); }), "(no error)");
}

TEST(KernelElementwiseCases, ConvertRoundTripsThroughBf16AndF16) {
  Tensor x = random_tensor({kN}, 5);
  Tensor back = Tensor::empty({kN}, DType::f32);
  for (DType half : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(std::string(dtype_name(half)));
    Tensor h = Tensor::empty({kN}, half), h2 = Tensor::empty({kN}, half);
    convert(h, x);
    convert(back, h);
    // Round to nearest: relative error at most the unit roundoff 2^-p (p = 8 significant bits
    // for bf16, 11 for f16 normals; f16 subnormals add an absolute 2^-25).
    const double rel = half == DType::bf16 ? 1.0 / 256 : 1.0 / 2048;
    for (int64_t i = 0; i < kN; ++i) {
      const double xi = f32(x)[i];
      ASSERT_LE(std::fabs(f32(back)[i] - xi), rel * std::fabs(xi) + (half == DType::f16 ? 3e-8 : 0))
          << i;
    }
    // Values already representable survive half -> f32 -> half bit for bit.
    convert(h2, back);
    EXPECT_TRUE(bitwise_equal(h, h2));
    // Matches the scalar conversions of core/dtype.h.
    for (int64_t i = 0; i < kN; i += 997) {
      const uint16_t want = half == DType::bf16 ? f32_to_bf16(f32(x)[i]) : f32_to_f16(f32(x)[i]);
      EXPECT_EQ(h.data<uint16_t>()[i], want) << i;
    }
  }
}

TEST(KernelElementwiseCases, ConvertSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float vals[] = {0.f, -0.f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                        1e6f, 65504.f, 1e-30f, 1.f + 1.f / 256};
  const int64_t n = std::size(vals);
  Tensor x = Tensor::empty({n}, DType::f32), back = Tensor::empty({n}, DType::f32);
  std::copy(vals, vals + n, f32(x));
  Tensor b = Tensor::empty({n}, DType::bf16), h = Tensor::empty({n}, DType::f16);
  convert(b, x);
  convert(back, b);
  EXPECT_TRUE(std::signbit(f32(back)[1]) && f32(back)[1] == 0.f);
  EXPECT_EQ(f32(back)[2], inf);
  EXPECT_EQ(f32(back)[3], -inf);
  EXPECT_TRUE(std::isnan(f32(back)[4]));
  EXPECT_EQ(f32(back)[8], 1.f);  // halfway between 1 and 1 + 2^-7: ties to even
  convert(h, x);
  convert(back, h);
  EXPECT_EQ(f32(back)[2], inf);
  EXPECT_TRUE(std::isnan(f32(back)[4]));
  EXPECT_EQ(f32(back)[5], inf);  // above the f16 range
  EXPECT_EQ(f32(back)[6], 65504.f);
  EXPECT_EQ(f32(back)[7], 0.f);  // below the f16 subnormals
  EXPECT_EQ(f32(back)[8], 1.f + 1.f / 256);
}

// The bf16 rounding of a whole tensor, vectorized, is bit for bit the scalar f32_to_bf16 in
// every lane and in the tail: ties both ways, subnormals, the largest finite values (which
// round to inf), NaNs with payloads (quieted, sign kept).
TEST(KernelElementwiseCases, ConvertToBf16IsTheScalarRoundingInEveryLane) {
  const uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f808001u, 0x00000001u, 0x807fffffu,
                           0x00ff8000u, 0x7f7fffffu, 0xff7f8000u, 0x7f800000u, 0xff800000u, 0x7fa00001u,
                           0xffc00011u, 0x7f800001u, 0x00000000u, 0x80000000u, 0x3eaaaaabu};
  const int64_t n = 1003;
  Tensor x = random_tensor({n}, 41);
  for (int64_t i = 0; i < n; i += 3) f32(x)[i] = std::bit_cast<float>(bits[(i / 3) % std::size(bits)]);
  Tensor b = Tensor::empty({n}, DType::bf16);
  convert(b, x);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(b.data<uint16_t>()[i], f32_to_bf16(f32(x)[i])) << i;
}

// IEEE half by integer arithmetic, independent of the compiler's and the CPU's conversions:
// round to nearest even, overflow to inf, f16 subnormals, NaN kept NaN (payloads not compared).
uint16_t reference_f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f), sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu,
                 man = x & 0x7fffffu;
  if (exp == 0xffu) return uint16_t(sign | 0x7c00u | (man ? 0x200u : 0u));
  const int e = int(exp) - 127 + 15;
  if (e >= 1) {  // an f16 normal (or overflow): keep 10 of 23 mantissa bits
    uint32_t h = (uint32_t(std::min(e, 31)) << 10) | (man >> 13);
    const uint32_t rem = man & 0x1fffu;
    if (e < 31 && (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))) ++h;  // a carry may reach inf
    return uint16_t(sign | std::min(h, 0x7c00u));
  }
  const int shift = 14 - e;  // units of 2^-24 from a 24-bit significand
  if (exp == 0 || shift >= 25) return uint16_t(sign);  // below half the smallest subnormal
  const uint32_t m = man | 0x800000u, half = 1u << (shift - 1);
  uint32_t h = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  if (rem > half || (rem == half && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

float reference_f16_to_f32(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.f : 1.f;
  if (exp == 31) return man ? std::numeric_limits<float>::quiet_NaN() : sign * std::numeric_limits<float>::infinity();
  return sign * (exp == 0 ? std::ldexp(float(man), -24) : std::ldexp(float(1024 + man), exp - 25));
}

// The bulk half conversions (vectorized on F16C at avx2 and above, scalar at generic) against
// the integer reference: every f16 value widened, and f32 values over the whole range
// (a stride through all bit patterns, ties and overflow edges, subnormals) rounded, both
// directly and as the f16 GEMM operand's round trip. 1M + values cross the thread chunks.
TEST(KernelElementwiseCases, HalfConversionsMatchAnIntegerReferenceEverywhere) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  std::vector<float> widened(all.size());
  cpu::from_f16(widened.data(), all.data(), int64_t(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    const float want = reference_f16_to_f32(all[i]);
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(widened[i])) << i;
    else
      ASSERT_EQ(std::bit_cast<uint32_t>(widened[i]), std::bit_cast<uint32_t>(want)) << i;
  }
  std::vector<float> x;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 4099) x.push_back(std::bit_cast<float>(uint32_t(b)));
  for (uint32_t b : {0x477ff000u, 0x477fefffu, 0x477fe000u, 0x477fe001u, 0x38800000u, 0x387fe000u, 0x33000000u,
                     0x33000001u, 0x32ffffffu, 0x33800000u, 0x3f801000u, 0x3f803000u, 0x3f801001u, 0x7f800000u,
                     0xff800000u, 0x7fc00001u, 0x80000000u, 0x00000001u})
    for (uint32_t sign : {0u, 0x80000000u}) x.push_back(std::bit_cast<float>(b ^ sign));
  const int64_t n = int64_t(x.size());
  std::vector<uint16_t> h(x.size());
  std::vector<float> rounded(x.size());
  cpu::to_f16(h.data(), x.data(), n);
  cpu::round_to_f16(rounded.data(), x.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t want = reference_f32_to_f16(x[size_t(i)]);
    if ((want & 0x7fffu) > 0x7c00u) {
      ASSERT_GT(h[size_t(i)] & 0x7fffu, 0x7c00u) << std::hex << std::bit_cast<uint32_t>(x[size_t(i)]);
      ASSERT_TRUE(std::isnan(rounded[size_t(i)])) << i;
      continue;
    }
    ASSERT_EQ(h[size_t(i)], want) << std::hex << std::bit_cast<uint32_t>(x[size_t(i)]);
    ASSERT_EQ(std::bit_cast<uint32_t>(rounded[size_t(i)]), std::bit_cast<uint32_t>(reference_f16_to_f32(want)))
        << std::hex << std::bit_cast<uint32_t>(x[size_t(i)]);
  }
}

TEST(KernelElementwiseCases, ConvertSameTypeCopiesAndHalfTypesCrossViaF32) {
  Tensor x = random_tensor({3, 5}, 6), y = Tensor::empty({15}, DType::f32);
  convert(y, x);
  EXPECT_TRUE(bitwise_equal(x, y));
  EXPECT_NE(x.raw(), y.raw());
  Tensor b = Tensor::empty({15}, DType::bf16), h = Tensor::empty({15}, DType::f16),
         b2 = Tensor::empty({15}, DType::bf16);
  convert(b, x);
  convert(h, b);  // every bf16 value of O(1) magnitude with 8 significant bits fits f16
  convert(b2, h);
  EXPECT_TRUE(bitwise_equal(b, b2));
  Tensor ints = Tensor::empty({15}, DType::i32), wrong = Tensor::empty({14}, DType::bf16);
  EXPECT_NE(error_of([&] { convert(ints, x); }), "(no error)");
  EXPECT_NE(error_of([&] { convert(wrong, x); }), "(no error)");
}

}  // namespace
}  // namespace zt
