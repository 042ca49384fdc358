// The portable bf16 GEMM kernel (see gemm_blocked.h for the design): plain C++ that any
// compiler and CPU run, vectorized only as far as the compiler does for the build's target.
// It is the path for CPUs without AVX2 + FMA and the reference the ISA kernels share a design
// with (ZT_CPU_ISA=generic runs it anywhere).
#include <algorithm>
#include <cstdint>

#include "core/cpu/gemm_blocked.h"
#include "core/dtype.h"

namespace zt::cpu {
namespace {

constexpr int64_t MR = 4;     // rows of C per micro-tile
constexpr int64_t NR = 16;    // columns of C per micro-tile
constexpr int64_t KC = 256;   // depth of a packed block
constexpr int64_t MC = 64;    // rows of A per packed block (a multiple of MR)
constexpr int64_t NC = 1024;  // columns of B per packed block (a multiple of NR)

inline float widen(float x) { return bf16_to_f32(f32_to_bf16(x)); }  // rounded to bf16
inline float widen(uint16_t x) { return bf16_to_f32(x); }
inline float widen(blocked::ExactF32 x) { return x.value; }  // an fp32 GEMM

// op(X)[i][k] as fp32 rounded to bf16, or 0 outside rows x cols.
template <typename T>
inline float element(const T* X, int64_t ld, bool trans, int64_t i, int64_t k, int64_t rows, int64_t cols) {
  if (i >= rows || k >= cols) return 0.f;
  return widen(trans ? X[k * ld + i] : X[i * ld + k]);
}

template <typename T>
void pack_b(const blocked::Args& g, const T* B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  const int64_t panels = (nc + NR - 1) / NR;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t j = 0; j < NR; ++j)  // op(B)[k][j] is B^T's [j][k]
        out[(p * kc + k) * NR + j] = element(B, g.ldb, !g.tb, j0 + p * NR + j, k0 + k, j0 + nc, g.K);
}

// Panels of MR rows, k-major (kc groups of MR values) when A is transposed, else row-major.
template <typename T>
void pack_a(const blocked::Args& g, const T* A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const int64_t panels = (mc + MR - 1) / MR;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * MR;
    for (int64_t r = 0; r < MR; ++r)
      for (int64_t k = 0; k < kc; ++k)
        dst[g.ta ? k * MR + r : r * kc + k] = element(A, g.lda, g.ta, i0 + p * MR + r, k0 + k, i0 + mc, g.K);
  }
}

struct Generic {
  static constexpr int64_t MR = cpu::MR, NR = cpu::NR, KC = cpu::KC, MC = cpu::MC, NC = cpu::NC;
  static constexpr bool kFinishBlocks = false;

  static void pack_a(const blocked::Args& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
    blocked::with_typed(g.A, [&](auto A) { cpu::pack_a(g, A, i0, mc, k0, kc, out); });
  }

  static void pack_b(const blocked::Args& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
    blocked::with_typed(g.B, [&](auto B) { cpu::pack_b(g, B, k0, kc, j0, nc, out); });
  }

  static void tile(int64_t kc, const float* a, const float* b, bool ta, int64_t mr, int64_t nr, float alpha,
                   float beta, float* C, int64_t ldc) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k, b += NR)
      for (int64_t r = 0; r < MR; ++r) {
        const float ar = ta ? a[k * MR + r] : a[r * kc + k];
        for (int64_t j = 0; j < NR; ++j) acc[r][j] += ar * b[j];
      }
    for (int64_t r = 0; r < mr; ++r)
      for (int64_t j = 0; j < nr; ++j) {
        float& c = C[r * ldc + j];
        c = beta == 0.f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * c;
      }
  }
};

}  // namespace

void blocked::gemm_generic(const blocked::Args& g) { blocked::gemm<Generic>(g); }

}  // namespace zt::cpu
