// GEMMs on cuBLASLt. The library (540 MB, ~200 MB of it relocated data) is loaded with dlopen
// on the first device GEMM rather than linked: linked, every zt process, CPU runs and `zt
// --help` included, paid ~0.2 s and ~200 MB of resident memory at startup.
// Row-major C (M,N) = op(A) op(B) is column-major C^T = op(B)^T op(A)^T,
// so A and B swap places and the leading dimensions stay the row strides. f32 operands run
// in exact fp32 (CUBLAS_COMPUTE_32F: no TF32); bf16/f16 operands accumulate in fp32. The
// handle, a 32 MiB workspace and the chosen algorithm per shape live as long as the process.
#include <cublasLt.h>
#include <dlfcn.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/ops.h"
#include "core/error.h"

namespace zt::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// The cuBLASLt entry points we call, resolved once from the dlopen'ed library.
struct LtApi {
#define ZT_LT_FN(name) decltype(&::name) name = nullptr;
  ZT_LT_FN(cublasLtCreate)
  ZT_LT_FN(cublasLtGetStatusString)
  ZT_LT_FN(cublasLtMatmulDescCreate)
  ZT_LT_FN(cublasLtMatmulDescDestroy)
  ZT_LT_FN(cublasLtMatmulDescSetAttribute)
  ZT_LT_FN(cublasLtMatrixLayoutCreate)
  ZT_LT_FN(cublasLtMatrixLayoutDestroy)
  ZT_LT_FN(cublasLtMatmulPreferenceCreate)
  ZT_LT_FN(cublasLtMatmulPreferenceDestroy)
  ZT_LT_FN(cublasLtMatmulPreferenceSetAttribute)
  ZT_LT_FN(cublasLtMatmulAlgoGetHeuristic)
  ZT_LT_FN(cublasLtMatmul)
#undef ZT_LT_FN
};

const LtApi& lt() {
  static const LtApi api = [] {
    void* lib = dlopen(ZT_CUBLASLT_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) fail("cannot load cuBLASLt ({}): {}; put the CUDA toolkit's library folder on LD_LIBRARY_PATH", ZT_CUBLASLT_SONAME, dlerror());
    LtApi a;
    auto resolve = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn) fail("{} has no symbol {}", ZT_CUBLASLT_SONAME, name);
    };
#define ZT_LT_RESOLVE(name) resolve(a.name, #name);
    ZT_LT_RESOLVE(cublasLtCreate)
    ZT_LT_RESOLVE(cublasLtGetStatusString)
    ZT_LT_RESOLVE(cublasLtMatmulDescCreate)
    ZT_LT_RESOLVE(cublasLtMatmulDescDestroy)
    ZT_LT_RESOLVE(cublasLtMatmulDescSetAttribute)
    ZT_LT_RESOLVE(cublasLtMatrixLayoutCreate)
    ZT_LT_RESOLVE(cublasLtMatrixLayoutDestroy)
    ZT_LT_RESOLVE(cublasLtMatmulPreferenceCreate)
    ZT_LT_RESOLVE(cublasLtMatmulPreferenceDestroy)
    ZT_LT_RESOLVE(cublasLtMatmulPreferenceSetAttribute)
    ZT_LT_RESOLVE(cublasLtMatmulAlgoGetHeuristic)
    ZT_LT_RESOLVE(cublasLtMatmul)
#undef ZT_LT_RESOLVE
    return a;
  }();
  return api;
}

#define ZT_CUBLAS_CHECK(call)                                                                         \
  do {                                                                                                \
    const cublasStatus_t zt_st_ = (call);                                                             \
    if (zt_st_ != CUBLAS_STATUS_SUCCESS)                                                              \
      fail("cuBLASLt error at {}:{}: {} failed: {} ({})", __FILE__, __LINE__, #call,                  \
           lt().cublasLtGetStatusString(zt_st_), static_cast<int>(zt_st_));                          \
  } while (0)

cudaDataType_t cuda_type(Elem e) {
  switch (e) {
    case Elem::bf16: return CUDA_R_16BF;
    case Elem::f16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

// One per device: the handle and a workspace kept across steps (fresh memory is costly).
struct LtContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

LtContext& context() {
  static std::mutex mu;
  static std::map<int, LtContext> contexts;
  const int device = current_device();
  std::lock_guard<std::mutex> lock(mu);
  LtContext& c = contexts[device];
  if (!c.handle) {
    ZT_CUBLAS_CHECK(lt().cublasLtCreate(&c.handle));
    c.workspace = device_allocator(device).allocate(kWorkspaceBytes, MemTag::workspace);
  }
  return c;
}

// Everything the heuristic's choice depends on, alignment of the pointers included.
using ShapeKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool,
                            int, bool>;

int alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (int align : {16, 8, 4})
    if (a % static_cast<uintptr_t>(align) == 0) return align;
  return 2;
}

// Owns the descriptors of one call.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descriptors() {
    if (c) lt().cublasLtMatrixLayoutDestroy(c);
    if (b) lt().cublasLtMatrixLayoutDestroy(b);
    if (a) lt().cublasLtMatrixLayoutDestroy(a);
    if (op) lt().cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

void gemm(const GemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  ZT_CHECK(g.K > 0 || g.beta == 1.f, "gemm with K = 0 and beta {}", g.beta);
  LtContext& ctx = context();
  cudaStream_t stream = compute_stream();

  // Column-major view: C^T (N,M) = op(B)^T (N,K) op(A)^T (K,M).
  const cublasOperation_t op_first = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // on B
  const cublasOperation_t op_second = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // on A
  Descriptors d;
  ZT_CUBLAS_CHECK(lt().cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  ZT_CUBLAS_CHECK(lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  ZT_CUBLAS_CHECK(lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  if (g.bias) {
    // Column-major bias is per row of C^T, i.e. per column of our row-major C.
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    ZT_CUBLAS_CHECK(lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    ZT_CUBLAS_CHECK(lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    const cudaDataType_t bias_type = CUDA_R_32F;
    ZT_CUBLAS_CHECK(
        lt().cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  const cudaDataType_t ab = cuda_type(g.ab_type), ct = cuda_type(g.c_type);
  // Stored (row-major) B is (K,N) or (N,K) when transposed: column-major rows x cols swap.
  ZT_CUBLAS_CHECK(lt().cublasLtMatrixLayoutCreate(&d.a, ab, g.trans_b ? g.K : g.N, g.trans_b ? g.N : g.K, g.ldb));
  ZT_CUBLAS_CHECK(lt().cublasLtMatrixLayoutCreate(&d.b, ab, g.trans_a ? g.M : g.K, g.trans_a ? g.K : g.M, g.lda));
  ZT_CUBLAS_CHECK(lt().cublasLtMatrixLayoutCreate(&d.c, ct, g.N, g.M, g.ldc));

  static std::mutex mu;
  static std::map<ShapeKey, cublasLtMatmulAlgo_t> algos;
  const ShapeKey key{current_device(), g.trans_a, g.trans_b, g.M, g.N, g.K, g.lda, g.ldb, g.ldc,
                     static_cast<int>(g.ab_type), static_cast<int>(g.c_type), g.bias != nullptr,
                     std::min({alignment_of(g.A), alignment_of(g.B), alignment_of(g.C)}), g.beta != 0.f};
  cublasLtMatmulAlgo_t algo;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = algos.find(key);
    if (it == algos.end()) {
      cublasLtMatmulPreference_t pref = nullptr;
      ZT_CUBLAS_CHECK(lt().cublasLtMatmulPreferenceCreate(&pref));
      const size_t ws = kWorkspaceBytes;
      ZT_CUBLAS_CHECK(lt().cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                           sizeof(ws)));
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      const cublasStatus_t st =
          lt().cublasLtMatmulAlgoGetHeuristic(ctx.handle, d.op, d.a, d.b, d.c, d.c, pref, 1, &result, &found);
      lt().cublasLtMatmulPreferenceDestroy(pref);
      if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        fail("cuBLASLt has no algorithm for ({}x{}) = op({}) x op({}), K {}, types ab {} c {}, bias {}", g.M, g.N,
             g.trans_a ? "A^T" : "A", g.trans_b ? "B^T" : "B", g.K, static_cast<int>(g.ab_type),
             static_cast<int>(g.c_type), g.bias != nullptr);
      it = algos.emplace(key, result.algo).first;
    }
    algo = it->second;
  }
  ZT_CUBLAS_CHECK(lt().cublasLtMatmul(ctx.handle, d.op, &g.alpha, g.B, d.a, g.A, d.b, &g.beta, g.C, d.c, g.C, d.c, &algo,
                                 ctx.workspace, kWorkspaceBytes, stream));
}

}  // namespace zt::cuda
