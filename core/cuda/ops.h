// Raw-pointer CUDA kernels behind core/kernels.h, the device twin of core/cpu/ops.h: plain C++
// declarations (no CUDA types) so core/kernels/*.cpp can call them. Every launch goes to the
// current device's compute stream (core/kernels/ makes the tensors' device current) and
// returns without waiting, except the functions that return a host value.
// Shapes and accumulation rules are those of core/kernels.h: backward kernels add (+=).
// Kernels that reduce in two passes take their scratch from the caller (a device tensor tagged
// workspace, so the caching allocator holds and counts it); the *_scratch functions size it.
// Token ids are not range-checked on the host (that would be a device-to-host copy and a wait
// per call): an id outside the table yields NaN rows and losses, never an out-of-bounds read.
#pragma once
#include <cstdint>

namespace zt::cuda {

// Element types of activations a kernel reads or writes in f32 (loads widen, stores round to
// nearest even).
enum class Elem : uint8_t { f32, bf16, f16 };

// ---- elementwise (elementwise.cu) ----
void fill(float* x, float value, int64_t n);
void axpy(float* y, float a, const float* x, int64_t n);
void add_bf16(float* y, const uint16_t* x, int64_t n);
void scale(float* x, float s, int64_t n);
// f64 accumulate in a fixed order; waits for the result. scratch: kSumSquaresScratch doubles.
inline constexpr int64_t kSumSquaresScratch = 1025;
double sum_squares(const float* x, int64_t n, double* scratch);
// *total (one device double) += sum of x (square: of x^2), in sum_squares' order; no host
// wait. scratch: kSumSquaresScratch doubles.
void sum_accumulate(double* total, const float* x, int64_t n, bool square, double* scratch);
void convert(void* dst, Elem dst_type, const void* src, Elem src_type, int64_t n);
// convert on a rows x cols matrix whose rows are ld_dst and ld_src elements apart; dst's
// columns from cols to ld_dst are set to zero.
void convert_rows(void* dst, Elem dst_type, int64_t ld_dst, const void* src, Elem src_type, int64_t ld_src,
                  int64_t rows, int64_t cols);
// dst rows = src rows, rows x row_bytes, rows ld_dst and ld_src bytes apart (a 2-D memcpy).
void copy_rows(void* dst, int64_t ld_dst, const void* src, int64_t ld_src, int64_t row_bytes, int64_t rows);
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int64_t step, float grad_scale);
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                float grad_scale);

// ---- activations, gate, rope, embeddings, token mixing (activation.cu) ----
void gelu_forward(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t n);
void gelu_backward(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t n);
void swiglu_forward(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t N, int64_t F);
void swiglu_backward(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t N, int64_t F);
void sigmoid_gate_forward(void* out, Elem out_type, const void* inp, Elem inp_type, const void* gate,
                          Elem gate_type, int64_t n);
void sigmoid_gate_backward(float* dinp, float* dgate, const float* dout, const void* inp, Elem inp_type,
                           const void* gate, Elem gate_type, int64_t n);
// x (B*T, width): rotates the first n_heads heads of each row (q then k); inverse: the adjoint.
void rope_apply(void* x, Elem x_type, const float* table, int64_t B, int64_t T, int64_t width, int64_t n_heads,
                int64_t D, bool inverse);
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int64_t N, int64_t T,
                       int64_t C);
// scratch: embedding_backward_scratch_bytes(N) bytes (the rows sorted by token).
size_t embedding_backward_scratch_bytes(int64_t N);
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int64_t N, int64_t T,
                        int64_t C, void* scratch);
void gather_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k);
void scatter_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k);

// ---- causal depthwise conv and MoE routing (token_mix.cu); moe_dispatch runs on the host ----
void causal_conv1d_forward(float* out, const void* inp, Elem inp_type, const float* w, const float* bias, int64_t B,
                           int64_t T, int64_t C, int64_t K);
void causal_conv1d_backward(float* dinp, float* dw, float* dbias, const float* dout, const void* inp, Elem inp_type,
                            const float* w, int64_t B, int64_t T, int64_t C, int64_t K);
void moe_router_forward(float* probs, int32_t* idx, float* weights, const float* logits, int64_t N, int64_t E,
                        int64_t K, bool normalize);
void moe_router_backward(float* dlogits, const float* dprobs, const float* dweights, const float* probs,
                         const int32_t* idx, int64_t N, int64_t E, int64_t K, bool normalize);
void moe_aux_loss_forward(float* aux, const float* probs, const int32_t* idx, int64_t B, int64_t T, int64_t E,
                          int64_t K);
void moe_aux_loss_backward(float* dprobs, const int32_t* idx, int64_t B, int64_t T, int64_t E, int64_t K, float scale);
// inp_rows: rows of inp; a row or slot index outside [0, inp_rows) gives NaN, never a stray read.
void gather_rows(void* out, const void* inp, const int32_t* rows, int64_t M, int64_t row_bytes, int64_t inp_rows);
void combine_rows(float* out, const float* inp, const int32_t* slots, const float* weights, int64_t N, int64_t K,
                  int64_t C, int64_t inp_rows);
void combine_rows_backward(float* dinp, float* dweights, const float* dout, const float* inp, const int32_t* slots,
                           const float* weights, int64_t N, int64_t K, int64_t C, int64_t inp_rows);

// ---- norms, loss, column sums (norm.cu) ----
void layernorm_forward(void* out, Elem out_type, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int64_t N, int64_t C, float eps);
// scratch: column_sums_scratch(N, C) floats, for these three.
int64_t column_sums_scratch(int64_t N, int64_t C);
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t N, int64_t C, float* scratch);
void rmsnorm_forward(void* out, Elem out_type, float* rstd, const float* inp, const float* w, int64_t N, int64_t C,
                     float eps);
void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                      int64_t N, int64_t C, float* scratch);
// out[c] += sum_n x[n,c], rows summed in a fixed order (deterministic).
void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, float* scratch);
// dlogits null: forward only; may alias logits.
void cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, int64_t N, int64_t V,
                   float dloss_scale);

// ---- attention (attention.cu) ----
struct AttnDims {
  int64_t B, T, H, KVH, D;
  int64_t qkv_width() const { return (H + 2 * KVH) * D; }
};
void attention_forward(void* out, Elem out_type, float* lse, const void* qkv, Elem qkv_type, const AttnDims& d);
// scratch: B*H*T floats (rowsum(dout * out), from the dQ pass to the dK/dV pass).
void attention_backward(float* dqkv, const float* dout, const void* qkv, Elem qkv_type, const void* out,
                        Elem out_type, const float* lse, const AttnDims& d, float* scratch);
// Whether attention_forward/backward run on tensor cores for these inputs (bf16, head dim 64
// or 128, 16-byte aligned operands, unless ZT_CUDA_ATTENTION=plain); the plain kernels take
// the rest.
bool attention_uses_tensor_cores(Elem qkv_type, const AttnDims& d);
void attention_decode(void* out, Elem out_type, const void* qkv, Elem qkv_type, float* kcache, float* vcache,
                      int64_t pos, const AttnDims& d);
inline constexpr int64_t kMaxAttnHeadDim = 256;

// ---- GEMM on cuBLASLt (gemm.cpp) ----
// C (M,N) f32 or out_type = alpha op(A) op(B) + beta C, row-major, A and B of type ab_type
// (f32: exact fp32, no TF32; bf16/f16: fp32 accumulate). bias (N) f32 or null: added to rows.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  const void* A = nullptr;
  int64_t lda = 0;
  const void* B = nullptr;
  int64_t ldb = 0;
  Elem ab_type = Elem::f32;
  void* C = nullptr;
  int64_t ldc = 0;
  Elem c_type = Elem::f32;
  float alpha = 1.f, beta = 0.f;
  const float* bias = nullptr;
};
void gemm(const GemmArgs& args);

}  // namespace zt::cuda
