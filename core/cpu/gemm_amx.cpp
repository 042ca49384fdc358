// bf16 GEMMs on AMX tiles (Isa::amx): oneDNN's matmul primitive, whose brgemm kernels run
// tdpbf16ps on 16 x 32 bf16 tiles. On 2 cores of an Intel Emerald Rapids it ran the linear
// layers' GEMMs of gpt2-124m and the default job at 420-1920 GFLOP/s: 1.4-7.6x oneDNN's fp32
// sgemm and 2.5-11x our widening AVX-512 kernel there, against an fp32 FMA peak of ~330
// (bench/bench_kernels, BM_Gemm). One primitive per GEMM shape is built on first use and kept;
// a batch's row count is cut so that few shapes arise (cuts() below).
//
// The arithmetic is a bf16 GEMM's: products of bf16 are exact in fp32 and sums are fp32, in
// oneDNN's K order (a weight gradient's K cuts in order), which the tests find independent of
// the thread count (1 against 3, also at a deep K with few C blocks, where a library could
// split K). An fp32 operand to be rounded is converted into a scratch copy first (AMX reads
// only bf16), with its row stride, so that it runs the primitive a bf16 operand of the same
// layout would: the same product bit for bit as converting it beforehand.
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cpu/gemm_blocked.h"
#include "core/cpu/ops.h"
#include "core/error.h"

namespace zt::cpu::blocked {
namespace {

// A primitive's key: the GEMM and the threads it is built for. oneDNN plans a primitive's
// work split for the threads it sees when building it (omp_get_max_threads()); one called
// inside an OpenMP parallel region (gemm_bf16_tn_row_blocks) runs on its caller's thread
// alone, and gets a primitive built for one.
struct Shape {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int threads;
  bool operator==(const Shape&) const = default;
};

struct ShapeHash {
  size_t operator()(const Shape& s) const {
    size_t h = size_t(s.ta) | size_t(s.tb) << 1;
    for (int64_t v : {s.M, s.N, s.K, s.lda, s.ldb, s.ldc}) h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h ^ std::hash<float>()(s.alpha) * 31u ^ std::hash<float>()(s.beta) ^ size_t(s.threads) << 40;
  }
};

// The engine and the primitives live to the end of the process and are never destroyed: at
// exit their destructors would run in no defined order against oneDNN's own static state.
const dnnl::engine& engine() {
  static const dnnl::engine& e = *new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return e;
}

// A matrix's memory descriptor: op(X) as rows x cols of a row-major array with row stride ld.
dnnl::memory::desc matrix(dnnl::memory::data_type type, bool trans, int64_t rows, int64_t cols, int64_t ld) {
  return {{rows, cols}, type, trans ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1}};
}

// A built primitive and the scratchpad it needs. Its scratchpad is the caller's (user mode):
// with oneDNN's own, two threads running one primitive at once (the row blocks of a weight
// gradient with equal shapes) share one scratchpad and get wrong sums.
struct Built {
  dnnl::matmul matmul;
  dnnl::memory::desc scratchpad;
};

std::atomic<int64_t> g_built{0};

// The primitive for a shape: built on its first call, then shared. This cache is the only
// one: oneDNN's own primitive cache keys a matmul by its description, not by the threads its
// work split was planned for, and handed a primitive planned for 2 threads to a build for one
// (a weight gradient's row block), which then ran the 2-thread plan in a scratchpad sized for
// one and wrote ~47 KB past its end (24 x 40 x 144). So oneDNN's is off, and the scratchpad
// is sized by the primitive that runs.
Built primitive(const Shape& s) {
  static std::mutex mu;
  static auto& cache = *new std::unordered_map<Shape, Built, ShapeHash>;
  const std::lock_guard lock(mu);
  static const bool onednn_cache_off = (dnnl::set_primitive_cache_capacity(0), true);
  (void)onednn_cache_off;
  if (auto it = cache.find(s); it != cache.end()) return it->second;
  using dt = dnnl::memory::data_type;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.alpha != 1.f) attr.set_output_scales(0, {s.alpha});
  if (s.beta != 0.f) {
    dnnl::post_ops ops;
    ops.append_sum(s.beta);
    attr.set_post_ops(ops);
  }
  const int saved_threads = omp_get_max_threads();  // this thread's setting only
  omp_set_num_threads(s.threads);
  try {
    const dnnl::matmul::desc desc(matrix(dt::bf16, s.ta, s.M, s.K, s.lda), matrix(dt::bf16, s.tb, s.K, s.N, s.ldb),
                                  matrix(dt::f32, false, s.M, s.N, s.ldc));
    const dnnl::matmul::primitive_desc pd(desc, attr, engine());
    omp_set_num_threads(saved_threads);
    g_built.fetch_add(1, std::memory_order_relaxed);
    if (cache.size() >= 1024) cache.clear();  // a bound for callers that sweep shapes (tests)
    const dnnl::matmul matmul(pd);
    const dnnl_memory_desc_t* scratchpad =
        dnnl_primitive_desc_query_md(matmul.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
    ZT_CHECK(scratchpad != nullptr, "oneDNN AMX matmul ({} x {} x {}): no scratchpad description", s.M, s.N, s.K);
    return cache.emplace(s, Built{matmul, dnnl::memory::desc(*scratchpad)}).first->second;
  } catch (const dnnl::error& e) {
    omp_set_num_threads(saved_threads);
    fail("oneDNN AMX bf16 matmul ({} x {} x {}, ta {} tb {}) could not be built: {}", s.M, s.N, s.K, s.ta, s.tb,
         e.what());
  }
}

// op(X) (rows x cols, row stride ld) as bf16: bf16 storage as is, fp32 rounded into this
// thread's scratch at the same stride (only the matrix's own elements are written or read).
const uint16_t* as_bf16(const Operand& x, bool trans, int64_t rows, int64_t cols, int64_t ld,
                        std::vector<uint16_t>& scratch) {
  if (x.storage == Storage::bf16) return static_cast<const uint16_t*>(x.data);
  ZT_CHECK(x.storage == Storage::f32_rounded, "the AMX GEMM takes bf16 or rounded fp32 operands");
  const int64_t stored_rows = trans ? cols : rows, stored_cols = trans ? rows : cols;
  if (stored_rows == 0 || stored_cols == 0) return scratch.data();
  const size_t need = size_t((stored_rows - 1) * ld + stored_cols);
  if (scratch.size() < need) scratch.resize(need);  // kept: it grows to the largest operand once
  const float* src = static_cast<const float*>(x.data);
  uint16_t* dst = scratch.data();
#pragma omp parallel for schedule(static) if (need >= (size_t{1} << 16) && !omp_in_parallel())
  for (int64_t r = 0; r < stored_rows; ++r)
#pragma omp simd
    for (int64_t c = 0; c < stored_cols; ++c) dst[r * ld + c] = f32_to_bf16(src[r * ld + c]);
  return dst;
}

// A batch's rows, cut into a multiple of 256, a multiple of 16 below 256 and the rest below
// 16. oneDNN builds (JIT-compiles) a primitive per shape, 0.3-0.7 ms each here, and a
// Mixture of Experts' expert GEMMs have new row counts every step: configs/tiny-moe.yaml's
// bf16 step built ~110 primitives per step, most of its time. Cut, any row count up to 4096
// runs as at most 3 products among 16 + 15 + 15 shapes.
std::array<int64_t, 3> cuts(int64_t rows) { return {rows / 256 * 256, rows % 256 / 16 * 16, rows % 16}; }

// oneDNN 2.6's AMX matmul ran a product with beta 0 (no sum post-op) 1.3-2.9x slower than
// the same product added onto C (beta 1, a sum post-op) where A is transposed (a weight
// gradient: 2048 x 768 x 256 in 0.9-1.4 against 0.5-1.1 ms, GPT-2's LM head 50257 x 768 x 256
// in 51-59 against 19-23) and where C's rows are not a multiple of 16 floats (the LM head's
// logits, 256 x 50257 x 768: 18-23 against 13-15); elsewhere both ran alike (Emerald
// Rapids, 2 threads, in one process taking turns). There, with C contiguous and at least
// this many elements, beta 0 runs as zeroing C and adding onto it: 1.1-2.4x faster, zeroing
// included.
constexpr int64_t kZeroThenAddMinElems = int64_t{1} << 20;

bool zero_then_add(const Args& g) {
  return g.beta == 0.f && (g.ta || g.ldc % 16 != 0) && g.ldc == g.N && g.M * g.N >= kZeroThenAddMinElems;
}

// One product on bf16 operands by the shape's primitive.
void run(const Shape& s, const uint16_t* a, const uint16_t* b, float* c) {
  const Built built = primitive(s);
  // Kept: it grows to the largest need once. 64-byte aligned, as oneDNN's own would be.
  thread_local std::vector<char> scratchpad;
  const size_t scratch_bytes = built.scratchpad.get_size() + 64;
  if (scratchpad.size() < scratch_bytes) scratchpad.resize(scratch_bytes);
  void* aligned = scratchpad.data() + (-reinterpret_cast<uintptr_t>(scratchpad.data()) & 63);
  using dt = dnnl::memory::data_type;
  const dnnl::engine& eng = engine();
  dnnl::memory am(matrix(dt::bf16, s.ta, s.M, s.K, s.lda), eng, const_cast<uint16_t*>(a));
  dnnl::memory bm(matrix(dt::bf16, s.tb, s.K, s.N, s.ldb), eng, const_cast<uint16_t*>(b));
  dnnl::memory cm(matrix(dt::f32, false, s.M, s.N, s.ldc), eng, c);
  thread_local dnnl::stream stream(eng);
  dnnl::memory sm(built.scratchpad, eng, aligned);
  built.matmul.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, sm}});
}

}  // namespace

void gemm_amx(const Args& g) {
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {  // alpha * (empty product) + beta * C; oneDNN refuses a zero dimension
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) g.C[i * g.ldc + j] = g.beta == 0.f ? 0.f : g.beta * g.C[i * g.ldc + j];
  } else {
    thread_local std::vector<uint16_t> scratch_a, scratch_b;
    const uint16_t* a = as_bf16(g.A, g.ta, g.M, g.K, g.lda, scratch_a);
    const uint16_t* b = as_bf16(g.B, g.tb, g.K, g.N, g.ldb, scratch_b);
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    float beta = g.beta;
    if (zero_then_add(g)) {
      fill_streaming(g.C, 0.f, g.M * g.N);
      beta = 1.f;
    }
    // The batch's rows (M of op(A) as it is, K of A transposed) in cuts; the others whole.
    const auto m_cuts = g.ta ? std::array<int64_t, 3>{g.M, 0, 0} : cuts(g.M);
    const auto k_cuts = g.ta ? cuts(g.K) : std::array<int64_t, 3>{g.K, 0, 0};
    for (int64_t i0 = 0; int64_t m : m_cuts) {
      for (int64_t k0 = 0; int64_t k : k_cuts) {
        if (m > 0 && k > 0) {
          // Later K cuts add onto what the first wrote.
          const Shape s{g.ta, g.tb, m, g.N, k, g.lda, g.ldb, g.ldc, g.alpha, k0 == 0 ? beta : 1.f, threads};
          const uint16_t* a_cut = a + (g.ta ? k0 * g.lda + i0 : i0 * g.lda + k0);
          const uint16_t* b_cut = b + (g.tb ? k0 : k0 * g.ldb);
          run(s, a_cut, b_cut, g.C + i0 * g.ldc);
        }
        k0 += k;
      }
      i0 += m;
    }
  }
  if (g.epilogue.active()) finish_rows(g.epilogue, g.C, g.ldc, g.M, g.N);
}

}  // namespace zt::cpu::blocked

namespace zt::cpu {
int64_t amx_primitives_built() { return blocked::g_built.load(std::memory_order_relaxed); }
}  // namespace zt::cpu
