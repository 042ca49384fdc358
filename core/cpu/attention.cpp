// FlashAttention-2 (Dao, 2023) on the CPU. Scores exist only as one (kBr, kBc) tile per
// thread: forward keeps a running max and sum per query row and rescales its output as key
// tiles arrive (online softmax); backward recomputes each tile's probabilities from the
// saved log-sum-exp. Saved activation memory is O(T) (out and lse), not O(T^2).
#include "core/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/cpu/bf16_elem.h"
#include "core/cpu/gemm.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {
namespace {

// Tiles of kBr query rows by up to kBc keys: a (64, 256) f32 tile is 64 KiB, so a thread's
// tiles and the q/k/v/dout rows they touch stay in L2. oneDNN's sgemm costs a few
// microseconds per call on top of the arithmetic (a 64x64x64 product runs at ~45 GFLOP/s,
// 64x128x64 at ~75 on Zen 3), so key tiles are wide; query tiles are narrow so that little
// of the diagonal is masked. Key tiles start at multiples of kBc, a multiple of kBr, so
// every row of a key tile's query tile sees at least one of its keys.
constexpr int64_t kBr = 64, kBc = 256;
static_assert(kBc % kBr == 0);
// Below this many flops per call a parallel region costs more than it saves (and its barrier
// spins badly on a loaded machine); results do not depend on the thread count either way.
constexpr int64_t kParallelFlops = int64_t{1} << 20;

// Per-thread tiles, kept across calls (touching fresh pages costs a fault per page).
float* scratch(int64_t floats) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) buf.resize(floats);
  return buf.data();
}

// How many of the `cols` keys of the tile starting at key c0 query row t may see (j <= t).
inline int64_t visible(int64_t t, int64_t c0, int64_t cols) {
  return std::clamp<int64_t>(t + 1 - c0, 0, cols);
}

// Row operations in vectors of kLanes, with a lane array per reduction added up as a tree.
// GCC runs an `omp simd` loop's last n % 16 values in a scalar loop (fast_exp there ~20
// cycles a value), which the diagonal tile's rows all have, and combines an `omp simd
// reduction`'s lanes one after another. Here a row's whole vectors run unmasked and its last
// partial vector is computed whole with its lanes past n selected away; a score row is kBc
// floats long, so reading and writing up to the next multiple of kLanes stays inside it.
// Lane arrays made the default job's attention forward 5-8% faster, backward 2-3%; leaving
// the whole vectors unmasked (they were all selected) and vectorizing the trees took another
// 4-15% off forward (bench_attention, Zen 4). The partial vector's loads are unconditional
// (its lanes past n hold finite values left in the row): with `x < tail ? f(t[x]) : 0`, GCC
// loaded t under a mask merged into a spilled register, and the stale bits in its other
// lanes made every tail multiply in dsoftmax_row take a denormal assist on Intel (the cost
// went away with FTZ/DAZ set): 29% of bf16 backward's own time, 0.3 ms of a 37 ms
// default-job step at avx2 (perf, Emerald Rapids).
constexpr int64_t kLanes = 16;  // one zmm, two ymm
static_assert(kBc % kLanes == 0);

// A row of n values as n / kLanes whole vectors and a tail of n % kLanes values.
struct RowSplit {
  int64_t whole, tail;
  explicit RowSplit(int64_t n) : whole(n / kLanes * kLanes), tail(n % kLanes) {}
  int64_t end() const { return whole + (tail > 0 ? kLanes : 0); }  // past the last vector touched
};

// The sum (max) of acc[0, kLanes), pairwise: halves added lane by lane, 8 + 4 + 2 + 1 wide,
// each step a loop of constant length that GCC vectorizes (with a variable width it ran
// them as scalars through the stack, ~15% of forward's own time). acc is overwritten.
template <int64_t kWidth = kLanes / 2, typename Op>
inline float tree(float* acc, Op op) {
  if constexpr (kWidth == 0) {
    return acc[0];
  } else {
#pragma omp simd
    for (int64_t l = 0; l < kWidth; ++l) acc[l] = op(acc[l], acc[l + kWidth]);
    return tree<kWidth / 2>(acc, op);
  }
}
inline float tree_sum(float* acc) {
  return tree(acc, [](float a, float b) { return a + b; });
}
inline float tree_max(float* acc) {
  return tree(acc, [](float a, float b) { return b > a ? b : a; });
}

// Sum of a[i] * b[i] over a head's D values (D a multiple of kLanes in every model shape; a
// remainder is added in order).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  const int64_t whole = n / kLanes * kLanes;
  for (int64_t j = 0; j < whole; j += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  float sum = tree_sum(acc);
  for (int64_t j = whole; j < n; ++j) sum += a[j] * b[j];
  return sum;
}

inline void scale_row(float* x, int64_t n, float a) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}

// One online-softmax step on a score row s[0, cols) whose first n entries are visible:
// s <- exp(s - m') (exactly 0 for masked entries, which are never read, so whatever they
// hold cannot make a NaN), m <- m' = max(m, s[0, n)), l <- l * exp(m - m') + sum(s).
// Returns exp(m - m'), the factor that rescales what was accumulated under the old max.
inline float online_softmax_row(float* s, int64_t n, int64_t cols, float& m, float& l) {
  const RowSplit row(n);
  float* t = s + row.whole;
  float acc[kLanes];
  for (int64_t x = 0; x < kLanes; ++x) acc[x] = m;
  for (int64_t j = 0; j < row.whole; j += kLanes)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) acc[x] = s[j + x] > acc[x] ? s[j + x] : acc[x];
  if (row.tail > 0)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) acc[x] = x < row.tail && t[x] > acc[x] ? t[x] : acc[x];
  const float mx = tree_max(acc);
  float sums[kLanes] = {};
  for (int64_t j = 0; j < row.whole; j += kLanes)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) {
      const float p = fast_exp(s[j + x] - mx);
      s[j + x] = p;
      sums[x] += p;
    }
  if (row.tail > 0)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) {
      const float e = fast_exp(t[x] - mx);
      const float p = x < row.tail ? e : 0.f;
      t[x] = p;
      sums[x] += p;
    }
  if (row.end() < cols) std::fill(s + row.end(), s + cols, 0.f);
  const float alpha = m == -INFINITY ? 0.f : std::exp(m - mx);  // -inf - -inf would be NaN
  l = l * alpha + tree_sum(sums);
  m = mx;
  return alpha;
}

// Backward's probabilities from forward's log-sum-exp: s <- exp(s - lse), 0 where masked.
inline void probs_row(float* s, int64_t n, int64_t cols, float lse) {
  const RowSplit row(n);
  float* t = s + row.whole;
  for (int64_t j = 0; j < row.whole; j += kLanes)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) s[j + x] = fast_exp(s[j + x] - lse);
  if (row.tail > 0)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) {
      const float e = fast_exp(t[x] - lse);
      t[x] = x < row.tail ? e : 0.f;
    }
  if (row.end() < cols) std::fill(s + row.end(), s + cols, 0.f);
}

// Softmax backward on a row: ds <- p * (dp - di) * scale, di = rowsum(dP * P) = rowsum(dO * O)
// (ds holds dp on entry; masked entries, where p is 0, become exactly 0).
inline void dsoftmax_row(float* ds, const float* p, int64_t n, int64_t cols, float di, float scale) {
  const RowSplit row(n);
  float* t = ds + row.whole;
  const float* pt = p + row.whole;
  for (int64_t j = 0; j < row.whole; j += kLanes)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) ds[j + x] = p[j + x] * (ds[j + x] - di) * scale;
  if (row.tail > 0)
#pragma omp simd
    for (int64_t x = 0; x < kLanes; ++x) {
      const float v = pt[x] * (t[x] - di) * scale;
      t[x] = x < row.tail ? v : 0.f;
    }
  if (row.end() < cols) std::fill(ds + row.end(), ds + cols, 0.f);
}

// Scores S = alpha A B^T (rows x cols, K = D). oneDNN's sgemm costs ~0.5-1 us a call on top
// of the arithmetic; with AVX-512 our blocked kernel (A read in place, B^T packed) takes less
// up to 64 columns, the diagonal's blocks (32 x 64 x 32 in 1.5 against 2.4 us on a Zen 4
// core). Wider, and with AVX2 at any width, oneDNN was as fast or faster. The choice depends
// on the shape and the ISA alone, so bf16 attention still multiplies as fp32 on its widened
// copies does.
inline void scores(int64_t rows, int64_t cols, int64_t D, float alpha, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float* S, int64_t lds) {
  const Isa isa = active_isa();
  if (cols <= 64 && isa >= Isa::avx512)
    return sgemm_blocked_isa(isa, false, true, rows, cols, D, alpha, A, lda, B, ldb, 0.f, S, lds);
  sgemm_small(false, true, rows, cols, D, alpha, A, lda, B, ldb, 0.f, S, lds);
}

// Backward's tile products C += op(A) B (dQ += dS K, dK += dS^T Q, dV += P^T dO; N = D).
// With AVX-512 and heads of at most 64, the blocked kernel: oneDNN's dispatch and per-call
// malloc were ~10% of backward's time (perf), and on the blocked kernel backward ran 2-10%
// faster at T <= 256, level at longer T (bench_attention, Zen 4). Forward's P V, whose K runs
// to kBc keys, stays on oneDNN, which is faster there. As in scores(), the choice depends on
// shape and ISA alone.
inline void add_product(bool ta, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                        int64_t ldb, float* C, int64_t ldc) {
  const Isa isa = active_isa();
  if (N <= 64 && isa >= Isa::avx512)
    return sgemm_blocked_isa(isa, ta, false, M, N, K, 1.f, A, lda, B, ldb, 1.f, C, ldc);
  sgemm_small(ta, false, M, N, K, 1.f, A, lda, B, ldb, 1.f, C, ldc);
}

// Rows of q, k or v (or out) as the f32 operands oneDNN's sgemm needs: f32 storage as it is
// (row stride ld), bf16 widened exactly into buf (row stride D) while it is in cache, which
// gives the same values as the widened copy of the whole tensor that it replaces.
struct F32Rows {
  const float* p;
  int64_t ld;
};
inline F32Rows f32_rows(const float* src, int64_t /*rows*/, int64_t /*D*/, int64_t ld, float* /*buf*/) {
  return {src, ld};
}
inline F32Rows f32_rows(const Bf16* src, int64_t rows, int64_t D, int64_t ld, float* buf) {
  for (int64_t r = 0; r < rows; ++r) {
    const Bf16* in = src + r * ld;
    float* o = buf + r * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) o[d] = to_f32(in[d]);
  }
  return {buf, D};
}

template <typename Elem>
void forward_impl(Elem* out, float* lse, const Elem* qkv, const AttnDims& d) {
  const int64_t B = d.B, T = d.T, H = d.H, KVH = d.KVH, D = d.D;
  const int64_t W = d.qkv_width(), HD = H * D, group = H / KVH, BH = B * H;
  const int64_t tiles = (T + kBr - 1) / kBr;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const bool parallel = 2 * B * H * T * T * D >= kParallelFlops;
  constexpr bool kWiden = !std::is_same_v<Elem, float>;
  // One work item per (b, h, query tile), longest (last) tiles first so that dynamic
  // scheduling ends balanced. Items write disjoint rows and compute them the same way on
  // any thread, so the result does not depend on the schedule or the thread count.
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int64_t item = 0; item < BH * tiles; ++item) {
    const int64_t bh = item % BH, r0 = (tiles - 1 - item / BH) * kBr;
    const int64_t r1 = std::min(T, r0 + kBr), rows = r1 - r0;
    const int64_t b = bh / H, h = bh % H, kvh = h / group;
    // scores, then probabilities: (rows, kBc)
    float* s = scratch(kBr * kBc + 2 * kBr + (kWiden ? 2 * kBr * D + 2 * kBc * D : 0));
    float* m = s + kBr * kBc;  // running row max (rows)
    float* l = m + kBr;        // running row sum under m (rows)
    float* q_buf = l + kBr;    // bf16 only: widened q rows, the f32 output rows, k and v tiles
    float* o_buf = q_buf + kBr * D;
    float* k_buf = o_buf + kBr * D;
    float* v_buf = k_buf + kBc * D;
    const F32Rows q = f32_rows(qkv + (b * T + r0) * W + h * D, rows, D, W, q_buf);  // (rows, D)
    const Elem* k = qkv + b * T * W + (H + kvh) * D;
    const Elem* v = qkv + b * T * W + (H + KVH + kvh) * D;
    // O (rows, D): the accumulator, in out itself when that is f32, else rounded into it at the end
    float* o = o_buf;
    int64_t ldo = D;
    if constexpr (!kWiden) o = out + (b * T + r0) * HD + h * D, ldo = HD;
    std::fill(m, m + rows, -INFINITY);
    std::fill(l, l + rows, 0.f);
    // Key tiles up to the causal limit: keys >= r1 are masked for every row of this tile.
    for (int64_t c0 = 0; c0 < r1; c0 += kBc) {
      const int64_t cols = std::min(r1, c0 + kBc) - c0;
      const F32Rows kt = f32_rows(k + c0 * W, cols, D, W, k_buf), vt = f32_rows(v + c0 * W, cols, D, W, v_buf);
      // S (rows, cols) = scale * Q K[c0:c0+cols]^T
      scores(rows, cols, D, scale, q.p, q.ld, kt.p, kt.ld, s, kBc);
      for (int64_t t = 0; t < rows; ++t) {
        const float alpha = online_softmax_row(s + t * kBc, visible(r0 + t, c0, cols), cols, m[t], l[t]);
        if (c0 > 0 && alpha != 1.f) scale_row(o + t * ldo, D, alpha);
      }
      // O (rows, D) = P V[c0:c0+cols] (the first tile overwrites: out need not be zeroed)
      sgemm_small(false, false, rows, D, cols, 1.f, s, kBc, vt.p, vt.ld, c0 > 0 ? 1.f : 0.f, o, ldo);
    }
    for (int64_t t = 0; t < rows; ++t) {
      const float inv = 1.f / l[t];
      lse[bh * T + r0 + t] = m[t] + std::log(l[t]);
      if constexpr (kWiden) {  // normalized and rounded in one pass
        Elem* dst = out + (b * T + r0 + t) * HD + h * D;
        const float* src = o + t * ldo;
#pragma omp simd
        for (int64_t x = 0; x < D; ++x) store(dst + x, src[x] * inv);
      } else {
        scale_row(o + t * ldo, D, inv);
      }
    }
  }
}

template <typename Elem>
void backward_impl(float* dqkv, const float* dout, const Elem* qkv, const Elem* out, const float* lse, const AttnDims& d,
                   bool accumulate) {
  const int64_t B = d.B, T = d.T, H = d.H, KVH = d.KVH, D = d.D;
  const int64_t W = d.qkv_width(), HD = H * D, group = H / KVH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const bool parallel = 5 * B * H * T * T * D >= kParallelFlops;
  constexpr bool kWiden = !std::is_same_v<Elem, float>;
  // One work item per (b, kv head): the query heads of a group all add into the same dK and
  // dV rows, so they run in a fixed order on one thread (no races, thread-count-independent).
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bk = 0; bk < B * KVH; ++bk) {
    const int64_t b = bk / KVH, kvh = bk % KVH;
    float* p = scratch(2 * kBr * kBc + kBr + (kWiden ? 2 * T * D + 2 * kBr * D : 0));  // P (rows, kBc)
    float* ds = p + kBr * kBc;  // dP, then dS (rows, kBc)
    float* di = ds + kBr * kBc;  // rowsum(dO * O) (rows)
    float* kv_buf = di + kBr;    // bf16 only: this item's k and v rows widened, a query tile's q and out
    // This item's k and v rows, widened once for all its query heads and tiles (bf16).
    const F32Rows k = f32_rows(qkv + b * T * W + (H + kvh) * D, T, D, W, kv_buf);
    const F32Rows v = f32_rows(qkv + b * T * W + (H + KVH + kvh) * D, T, D, W, kv_buf + T * D);
    float* q_buf = kv_buf + 2 * T * D;
    float* o_buf = q_buf + kBr * D;
    float* dk = dqkv + b * T * W + (H + kvh) * D;
    float* dv = dqkv + b * T * W + (H + KVH + kvh) * D;
    if (!accumulate)  // this item's columns of dqkv (its group's dQ, its dK and dV), while in cache
      for (int64_t t = 0; t < T; ++t) {
        std::fill_n(dqkv + (b * T + t) * W + kvh * group * D, group * D, 0.f);
        std::fill_n(dk + t * W, D, 0.f);
        std::fill_n(dv + t * W, D, 0.f);
      }
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const float* row_lse = lse + (b * H + h) * T;
      for (int64_t r0 = 0; r0 < T; r0 += kBr) {
        const int64_t r1 = std::min(T, r0 + kBr);
        const F32Rows ot = f32_rows(out + (b * T + r0) * HD + h * D, r1 - r0, D, HD, o_buf);
        for (int64_t t = r0; t < r1; ++t) di[t - r0] = dot(dout + (b * T + t) * HD + h * D, ot.p + (t - r0) * ot.ld, D);
        const F32Rows qt = f32_rows(qkv + (b * T + r0) * W + h * D, r1 - r0, D, W, q_buf);  // (r1 - r0, D)
        // Rows [a, e) of this query tile against keys [c0, c1).
        auto block = [&](int64_t a, int64_t e, int64_t c0, int64_t c1) {
          const int64_t rows = e - a, cols = c1 - c0;
          const float* q = qt.p + (a - r0) * qt.ld;  // (rows, D)
          float* dq = dqkv + (b * T + a) * W + h * D;
          const float* go = dout + (b * T + a) * HD + h * D;  // (rows, D), stride HD
          const float* kc = k.p + c0 * k.ld;
          const float* vc = v.p + c0 * v.ld;
          // P (rows, cols) = exp(scale * Q K^T - lse), as forward computed it
          scores(rows, cols, D, scale, q, qt.ld, kc, k.ld, p, kBc);
          for (int64_t t = 0; t < rows; ++t)
            probs_row(p + t * kBc, visible(a + t, c0, cols), cols, row_lse[a + t]);
          // dP (rows, cols) = dO V^T, then dS = P * (dP - di) * scale in place
          scores(rows, cols, D, 1.f, go, HD, vc, v.ld, ds, kBc);
          for (int64_t t = 0; t < rows; ++t)
            dsoftmax_row(ds + t * kBc, p + t * kBc, visible(a + t, c0, cols), cols, di[a - r0 + t], scale);
          // dQ += dS K;  dK += dS^T Q;  dV += P^T dO   (over these keys)
          add_product(false, rows, D, cols, ds, kBc, kc, k.ld, dq, W);
          add_product(true, cols, D, rows, ds, kBc, q, qt.ld, dk + c0 * W, W);
          add_product(true, cols, D, rows, p, kBc, go, HD, dv + c0 * W, W);
        };
        // Keys left of the diagonal are unmasked. The diagonal (kBr, kBr) tile goes by row
        // halves, the first against only the keys it sees: a quarter of the tile's work
        // skipped, which at T <= 64 (one tile) pays for recomputing P.
        for (int64_t c0 = 0; c0 < r0; c0 += kBc) block(r0, r1, c0, std::min(r0, c0 + kBc));
        for (int64_t a = r0; a < r1; a += kBr / 2) {
          const int64_t e = std::min(r1, a + kBr / 2);
          block(a, e, r0, e);
        }
      }
    }
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, const AttnDims& d) {
  forward_impl(out, lse, qkv, d);
}
void attention_forward(Bf16* out, float* lse, const Bf16* qkv, const AttnDims& d) {
  forward_impl(out, lse, qkv, d);
}
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse,
                        const AttnDims& d, bool accumulate) {
  backward_impl(dqkv, dout, qkv, out, lse, d, accumulate);
}
void attention_backward(float* dqkv, const float* dout, const Bf16* qkv, const Bf16* out, const float* lse,
                        const AttnDims& d, bool accumulate) {
  backward_impl(dqkv, dout, qkv, out, lse, d, accumulate);
}

}  // namespace zt::cpu
