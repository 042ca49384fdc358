#include "core/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace zt::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda,
                                B, ldb, beta, C, ldc);
  ZT_CHECK(st == dnnl_success, "dnnl_sgemm failed with status {}", static_cast<int>(st));
}

namespace {

struct Bf16Gemm {
  dnnl::memory::desc a, b, c;
  dnnl::matmul prim;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Row-major op(X) (rows, cols) with row stride ld, as a strided 2-D descriptor.
dnnl::memory::desc strided(int64_t rows, int64_t cols, int64_t ld, bool trans, dnnl::memory::data_type dt) {
  return dnnl::memory::desc({rows, cols}, dt, trans ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1});
}

const Bf16Gemm& bf16_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, int64_t lda, int64_t ldb,
                          float beta, int64_t ldc) {
  using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, float, int64_t, int64_t, float, int64_t>;
  static std::mutex mu;
  static std::map<Key, Bf16Gemm> cache;
  const Key key{ta, tb, M, N, K, alpha, lda, ldb, beta, ldc};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  using dt = dnnl::memory::data_type;
  Bf16Gemm g;
  g.a = strided(M, K, lda, ta, dt::bf16);
  g.b = strided(K, N, ldb, tb, dt::bf16);
  g.c = dnnl::memory::desc({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  g.prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(g.a, g.b, g.c), attr, cpu_engine()));
  return cache.emplace(key, std::move(g)).first->second;
}

// op(X) (rows x cols, row stride ld) as bf16: the data itself, or a rounded copy in `copy`.
const uint16_t* as_bf16(Bf16Operand x, int64_t rows, int64_t cols, int64_t ld, bool trans,
                        std::vector<uint16_t>& copy) {
  if (!x.fp32 || rows == 0 || cols == 0) return static_cast<const uint16_t*>(x.data);
  const int64_t n = (trans ? cols - 1 : rows - 1) * ld + (trans ? rows : cols);
  const float* f = static_cast<const float*>(x.data);
  copy.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) copy[size_t(i)] = f32_to_bf16(f[i]);
  return copy.data();
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  if (has_avx512()) return gemm_bf16_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (M == 0 || N == 0) return;
  std::vector<uint16_t> a_copy, b_copy;
  gemm_bf16_onednn(trans_a, trans_b, M, N, K, alpha, as_bf16(A, M, K, lda, trans_a, a_copy), lda,
                   as_bf16(B, K, N, ldb, trans_b, b_copy), ldb, beta, C, ldc);
}

void gemm_bf16_onednn(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
  if (M == 0 || N == 0) return;
  try {
    const Bf16Gemm& g = bf16_gemm(trans_a, trans_b, M, N, K, alpha, lda, ldb, beta, ldc);
    dnnl::engine& e = cpu_engine();
    dnnl::stream stream(e);
    dnnl::memory a(g.a, e, const_cast<uint16_t*>(A)), b(g.b, e, const_cast<uint16_t*>(B)), c(g.c, e, C);
    g.prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  } catch (const dnnl::error& err) {
    fail("oneDNN bf16 matmul ({} x {} x {}) failed: {}", M, N, K, err.what());
  }
}

}  // namespace zt::cpu
