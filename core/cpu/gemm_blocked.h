// The BLIS-style loops every blocked GEMM kernel shares (one per ISA: gemm_avx512_bf16.cpp,
// gemm_avx512.cpp, gemm_avx2.cpp, gemm_generic.cpp). B is packed in KC x NC blocks of NR-wide
// panels and A in MC x KC blocks of MR-high panels; packing widens bf16 to fp32 (a 16-bit
// shift, exact) or rounds fp32 operands to bf16 on the way (so activations need no converted
// copy), and the micro-kernel is plain fp32 FMA on an MR x NR tile of C held in registers.
// Products of bf16 values are exact in fp32, so this computes what a native bf16 dot-product
// kernel does; gemm_avx512_bf16.cpp is one (it packs bf16 pairs and runs vdpbf16ps).
// fp32 operands can also be packed as they are (Storage::f32), for an fp32 GEMM.
//
// A Kernel supplies the ISA-specific parts as static functions, compiled for its ISA with
// target attributes (this file is compiled for the build's baseline and calls them):
//   MR, NR, KC, MC, NC                   blocking (MC a multiple of MR, NC of NR)
//   pack_a(args, i0, mc, k0, kc, out)    op(A)[i0:i0+mc, k0:k0+kc] into MR-row panels of
//                                        kc * MR floats, in a layout of the kernel's choice
//                                        (it may depend on args.ta)
//   pack_b(args, k0, kc, j0, nc, out)    op(B)[k0:k0+kc, j0:j0+nc] into NR-column panels
//   tile(kc, a, b, ta, mr, nr, alpha, beta, C, ldc)
//                                        C[mr x nr] = alpha * a-panel b-panel + beta * C
//                                        (beta == 0 never reads C)
//   kFinishBlocks                        the epilogue per MC x NC block of C (true) or per tile
// and optionally:
//   kKPairs                              K blocks of even depth (a kernel that takes k in pairs;
//                                        an odd K leaves its last block odd)
//   a_panel_floats(kc), b_panel_floats(kc)
//                                        the size of a packed panel (floats' worth), when not
//                                        kc * MR and kc * NR (bf16 pairs: half that, rounded up)
// and, for an A the micro-kernel can read where it lies (then A is not packed):
//   reads_a_in_place(args)               true for this call's A
//   tile_in_place(args, i, k0, kc, b, mr, nr, beta, C)
//                                        as tile, with op(A)[i : i+mr, k0 : k0+kc] read from A
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/cpu/gemm.h"
#include "core/dtype.h"

namespace zt::cpu::blocked {

// How an operand is stored and what packing makes of it: bf16 widened (exact), fp32 rounded
// to bf16 (a bf16 GEMM on fp32 activations), or fp32 as is (an fp32 GEMM).
enum class Storage { bf16, f32_rounded, f32 };
struct Operand {
  const void* data;
  Storage storage;
};
// Element type for Storage::f32 in the kernels' pack templates: fp32 loaded without rounding.
struct ExactF32 {
  float value;
};

// One GEMM call: C (M,N) = alpha * op(A) (M,K) op(B) (K,N) + beta * C, row strides lda/ldb/ldc.
struct Args {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  Operand A;
  int64_t lda;
  Operand B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  Epilogue epilogue = {};
};

// Calls f(pointer) with x's data typed by its storage: const uint16_t*, const float*
// (rounded) or const ExactF32*.
template <typename F>
inline void with_typed(const Operand& x, F&& f) {
  switch (x.storage) {
    case Storage::bf16: return f(static_cast<const uint16_t*>(x.data));
    case Storage::f32_rounded: return f(static_cast<const float*>(x.data));
    case Storage::f32: return f(static_cast<const ExactF32*>(x.data));
  }
}

// op(X) advanced by `rows` rows and `cols` columns (row stride ld).
inline Operand offset(Operand x, bool trans, int64_t rows, int64_t cols, int64_t ld) {
  const int64_t elems = trans ? cols * ld + rows : rows * ld + cols;
  x.data = static_cast<const char*>(x.data) + elems * (x.storage == Storage::bf16 ? 2 : 4);
  return x;
}

// The epilogue on a finished mr x nr tile or block of C at (i, j), while it is in cache: the
// bias added to each row, then C or the bf16 output written; the same operations in the same
// order as a separate bias pass and conversion, so the results are bitwise those.
inline void finish_tile(const Epilogue& e, float* C, int64_t ldc, int64_t i, int64_t j, int64_t mr, int64_t nr) {
  for (int64_t r = 0; r < mr; ++r) {
    float* c = C + (i + r) * ldc + j;
    const float* bias = e.bias ? e.bias + j : nullptr;
    if (e.bf16_out) {
      uint16_t* o = e.bf16_out + (i + r) * e.ldo + j;
      if (bias) {
#pragma omp simd
        for (int64_t x = 0; x < nr; ++x) o[x] = f32_to_bf16(c[x] + bias[x]);
      } else {
#pragma omp simd
        for (int64_t x = 0; x < nr; ++x) o[x] = f32_to_bf16(c[x]);
      }
    } else if (bias) {
#pragma omp simd
      for (int64_t x = 0; x < nr; ++x) c[x] += bias[x];
    }
  }
}

// The epilogue on a whole M x N product that a library computed (oneDNN's sgemm and AMX matmul),
// row by row; in parallel for large C unless the caller already runs inside a parallel region.
inline void finish_rows(const Epilogue& e, float* C, int64_t ldc, int64_t M, int64_t N) {
#pragma omp parallel for schedule(static) if (M * N >= (int64_t{1} << 16) && !omp_in_parallel())
  for (int64_t i = 0; i < M; ++i) finish_tile(e, C, ldc, i, 0, 1, N);
}

// A packing buffer on a cache-line boundary, so that the micro-kernel's loads of packed B
// and the packing stores never straddle two lines (at std::vector's 16-byte alignment every
// 64-byte one did; aligning was worth 0.5-3% on the model's shapes).
class PackBuffer {
 public:
  explicit PackBuffer(int64_t floats)
      : data_(static_cast<float*>(std::aligned_alloc(64, (static_cast<size_t>(floats) * 4 + 63) / 64 * 64))) {
    if (data_ == nullptr) throw std::bad_alloc();
    std::fill_n(data_, floats, 0.f);  // as the std::vector it replaced: nothing reads garbage
  }
  ~PackBuffer() { std::free(data_); }
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  float* data() { return data_; }

 private:
  float* data_;
};

// One thread's GEMM over its strip, with its own packing buffers (kept across calls).
template <class Kernel>
void gemm_serial(const Args& g) {
  constexpr int64_t MR = Kernel::MR, NR = Kernel::NR, KC = Kernel::KC, MC = Kernel::MC, NC = Kernel::NC;
  // 16 floats of slack: a packing loop may store a whole vector past its panel's last value.
  thread_local PackBuffer a_pack(MC * KC + 16), b_pack(NC * KC + 16);
  constexpr bool kInPlace = requires(const Args& a) { Kernel::reads_a_in_place(a); };
  bool in_place = false;
  if constexpr (kInPlace) in_place = Kernel::reads_a_in_place(g);
  // K in blocks of equal depth, at most KC: a short last block (K = 512 as 384 + 128) pays a
  // whole pass over C's tiles for few FMAs. The default job's bf16 step ran 0-2% faster (13
  // A/B runs in one process, AVX-512 and AVX2, Zen 5).
  const int64_t k_blocks = std::max<int64_t>(1, (g.K + KC - 1) / KC);
  int64_t kc_step = (g.K + k_blocks - 1) / k_blocks;
  if constexpr (requires { Kernel::kKPairs; }) kc_step += kc_step % 2;  // KC is even: still <= KC
  const auto a_panel = [](int64_t kc) {
    if constexpr (requires { Kernel::a_panel_floats(kc); }) return Kernel::a_panel_floats(kc);
    return kc * MR;
  };
  const auto b_panel = [](int64_t kc) {
    if constexpr (requires { Kernel::b_panel_floats(kc); }) return Kernel::b_panel_floats(kc);
    return kc * NR;
  };
  for (int64_t j0 = 0; j0 < g.N; j0 += NC) {
    const int64_t nc = std::min(NC, g.N - j0), panels_n = (nc + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < g.K; k0 += kc_step) {
      const int64_t kc = std::min(kc_step, g.K - k0);
      const float beta = k0 == 0 ? g.beta : 1.f;  // later K blocks accumulate onto C
      const bool finish = k0 + kc == g.K && g.epilogue.active();
      Kernel::pack_b(g, k0, kc, j0, nc, b_pack.data());
      for (int64_t i0 = 0; i0 < g.M; i0 += MC) {
        const int64_t mc = std::min(MC, g.M - i0), panels_m = (mc + MR - 1) / MR;
        if (!in_place) Kernel::pack_a(g, i0, mc, k0, kc, a_pack.data());
        for (int64_t pn = 0; pn < panels_n; ++pn)
          for (int64_t pm = 0; pm < panels_m; ++pm) {
            const int64_t i = i0 + pm * MR, j = j0 + pn * NR;
            const int64_t mr = std::min(MR, g.M - i), nr = std::min(NR, g.N - j);
            const float* b = b_pack.data() + pn * b_panel(kc);
            float* c = g.C + i * g.ldc + j;
            bool done = false;
            if constexpr (kInPlace) {
              if (in_place) Kernel::tile_in_place(g, i, k0, kc, b, mr, nr, beta, c);
              done = in_place;
            }
            if (!done) Kernel::tile(kc, a_pack.data() + pm * a_panel(kc), b, g.ta, mr, nr, g.alpha, beta, c, g.ldc);
            if (finish && !Kernel::kFinishBlocks) finish_tile(g.epilogue, g.C, g.ldc, i, j, mr, nr);
          }
        if (finish && Kernel::kFinishBlocks) finish_tile(g.epilogue, g.C, g.ldc, i0, j0, mc, nc);
      }
    }
  }
}

// Threads split C into strips (whole panels) along its longer side, and each runs the serial
// GEMM on its strip: no shared buffers, no barriers. Each packs its own copy of the other
// operand, which costs 1/(strip width) of its FLOPs, so that copy is of the smaller one
// (a forward qkv of 1024 x 384 ran 2-25% faster split by rows than by columns); the other
// side is split only when the longer one has fewer panels than threads. Every element of C
// is summed by one thread in one K order, so results do not depend on threads. More strips
// than threads, taken as threads come free (to even out a vCPU the host slows), ran slower:
// each strip packs its own copy. At 2-4 strips per thread the default job's forward and
// input-gradient GEMMs ran from 8% slower to 6% faster, mostly 1-4% slower, and its weight
// gradients (whose copy is of A over all of K) 4-31% slower (bf16, AVX2, Emerald Rapids).
template <class Kernel>
void gemm(const Args& g) {
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {  // C = beta * C
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) g.C[i * g.ldc + j] = g.beta == 0.f ? 0.f : g.beta * g.C[i * g.ldc + j];
    if (g.epilogue.active()) finish_tile(g.epilogue, g.C, g.ldc, 0, 0, g.M, g.N);
    return;
  }
  // One thread when called inside a parallel region (a caller that splits the work itself,
  // gemm_bf16_tn_row_blocks): a nested team would oversubscribe the cores.
  const double flops = 2.0 * double(g.M) * double(g.N) * double(g.K);
  const int threads = flops < 4e6 || omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads == 1) return gemm_serial<Kernel>(g);
  const int64_t panels_n = (g.N + Kernel::NR - 1) / Kernel::NR, panels_m = (g.M + Kernel::MR - 1) / Kernel::MR;
  bool by_columns = g.N >= g.M;
  if (by_columns && panels_n < threads && panels_m > panels_n) by_columns = false;
  if (!by_columns && panels_m < threads && panels_n > panels_m) by_columns = true;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t units = by_columns ? panels_n : panels_m, step = by_columns ? Kernel::NR : Kernel::MR;
    const int64_t begin = units * t / T * step, end = std::min(units * (t + 1) / T * step, by_columns ? g.N : g.M);
    if (begin < end) {
      Args s = g;
      if (by_columns) {
        s.N = end - begin;
        s.B = offset(g.B, g.tb, 0, begin, g.ldb);
        s.C = g.C + begin;
        if (s.epilogue.bias) s.epilogue.bias += begin;
        if (s.epilogue.bf16_out) s.epilogue.bf16_out += begin;
      } else {
        s.M = end - begin;
        s.A = offset(g.A, g.ta, begin, 0, g.lda);
        s.C = g.C + begin * g.ldc;
        if (s.epilogue.bf16_out) s.epilogue.bf16_out += begin * s.epilogue.ldo;
      }
      gemm_serial<Kernel>(s);
    }
  }
}

// The kernels, one per ISA (core/cpu/gemm_<isa>.cpp).
void gemm_avx512(const Args& g);
void gemm_avx512_bf16(const Args& g);  // bf16 and rounded-fp32 operands only
void gemm_avx2(const Args& g);
void gemm_generic(const Args& g);
// Not blocked here: oneDNN's AMX matmul (core/cpu/gemm_amx.cpp), on the same arguments.
void gemm_amx(const Args& g);  // bf16 and rounded-fp32 operands only

}  // namespace zt::cpu::blocked
