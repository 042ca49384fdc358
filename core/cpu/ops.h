// Raw-pointer CPU kernels behind core/kernels.h. Row-major f32; N rows, C channels.
// Same conventions as the public API: backward kernels accumulate (+=).
#pragma once
#include <cstdint>

namespace zt::cpu {

struct Bf16;

// out[c] += sum_n x[n,c]; with `rounded`, x rounded to bf16 is also written there in the same
// pass (a linear backward's dout for its bf16 GEMMs: one read of dout instead of two), rows
// split among threads as RowBlocks(N); `stream` writes it with non-temporal stores, for a
// copy whose readers are not the threads that wrote its rows.
void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, Bf16* rounded = nullptr,
                       bool stream = false);

// IEEE half conversions of n values, rounding to nearest even, on all threads. round_to_f16
// writes src rounded to f16 and widened back (what an fp16 GEMM operand holds, in f32).
void to_f16(uint16_t* dst, const float* src, int64_t n);
void to_f16_one_thread(uint16_t* dst, const float* src, int64_t n);  // for callers' own threads
void from_f16(float* dst, const uint16_t* src, int64_t n);
void round_to_f16(float* dst, const float* src, int64_t n);

// The norms' forwards also write a bf16 out directly (Bf16, bf16_elem.h).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int64_t N, int64_t C, float eps);
void layernorm_forward(Bf16* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int64_t N, int64_t C);
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int64_t N,
                     int64_t C, float eps);
void rmsnorm_forward(Bf16* out, float* rstd, const float* inp, const float* w, int64_t N,
                     int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                      const float* rstd, int64_t N, int64_t C);

// Activations also read (and the forwards write) bf16 directly: Bf16 (bf16_elem.h).
void gelu_forward(float* out, const float* inp, int64_t n);
void gelu_forward(Bf16* out, const Bf16* inp, int64_t n);
// Backwards add into dinp, or with accumulate = false write it.
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate = true);
void gelu_backward(float* dinp, const float* dout, const Bf16* inp, int64_t n, bool accumulate = true);
void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F);
void swiglu_forward(Bf16* out, const Bf16* inp, int64_t N, int64_t F);
void swiglu_backward(float* dinp, const float* dout, const float* inp, int64_t N, int64_t F, bool accumulate = true);
void swiglu_backward(float* dinp, const float* dout, const Bf16* inp, int64_t N, int64_t F, bool accumulate = true);

// Gated attention and WorkerTransformer token mixing (token_mix.cpp).
void sigmoid_gate_forward(float* out, const float* inp, const float* gate, int64_t n);
void sigmoid_gate_backward(float* dinp, float* dgate, const float* dout, const float* inp,
                           const float* gate, int64_t n);
void causal_conv1d_forward(float* out, const float* inp, const float* w, const float* bias,
                           int64_t B, int64_t T, int64_t C, int64_t K);
void causal_conv1d_backward(float* dinp, float* dw, float* dbias, const float* dout,
                            const float* inp, const float* w, int64_t B, int64_t T, int64_t C,
                            int64_t K);
void gather_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k);
void scatter_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k);

// Mixture of Experts routing (moe.cpp); shapes as in core/kernels.h.
void moe_router_forward(float* probs, int32_t* idx, float* weights, const float* logits, int64_t N,
                        int64_t E, int64_t K, bool normalize);
void moe_router_backward(float* dlogits, const float* dprobs, const float* dweights, const float* probs,
                         const int32_t* idx, int64_t N, int64_t E, int64_t K, bool normalize);
void moe_dispatch(int32_t* rows, int32_t* slots, int64_t* offsets, const int32_t* idx, int64_t N, int64_t E,
                  int64_t K);
void moe_aux_loss_forward(float* aux, const float* probs, const int32_t* idx, int64_t B, int64_t T, int64_t E,
                          int64_t K);
void moe_aux_loss_backward(float* dprobs, const int32_t* idx, int64_t B, int64_t T, int64_t E, int64_t K,
                           float scale);
void gather_rows(void* out, const void* inp, const int32_t* rows, int64_t M, int64_t row_bytes);
void combine_rows(float* out, const float* inp, const int32_t* slots, const float* weights, int64_t N, int64_t K,
                  int64_t C);
void combine_rows_backward(float* dinp, float* dweights, const float* dout, const float* inp, const int32_t* slots,
                           const float* weights, int64_t N, int64_t K, int64_t C);

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                       int64_t N, int64_t T, int64_t C);
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                        int64_t N, int64_t T, int64_t C);

// dlogits may be null (forward only) or alias logits.
void cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                   int64_t N, int64_t V, float dloss_scale);

void fill(float* x, float value, int64_t n);
// fill through non-temporal stores at any size (fill streams only buffers past 32 MB).
void fill_streaming(float* x, float value, int64_t n);
void axpy(float* y, float a, const float* x, int64_t n);
void scale(float* x, float s, int64_t n);
double sum_squares(const float* x, int64_t n);
// y = bf16(a + b) elementwise on bf16 bits, the sum taken in f32 and rounded to nearest even;
// y may alias a or b. Single-threaded: communication backends call it from their own thread.
void sum_bf16(uint16_t* y, const uint16_t* a, const uint16_t* b, int64_t n);

// The mixed-precision compute copy an update writes: the updated p rounded to bf16 or to f16
// (at most one of the two set), or none.
struct ComputeOut {
  Bf16* bf16 = nullptr;
  uint16_t* f16 = nullptr;
};

// Both read grads as g * grad_scale and write the compute copy in the same pass.
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale,
                  ComputeOut compute_out = {});
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                float weight_decay, float grad_scale, ComputeOut compute_out = {});

}  // namespace zt::cpu
