// The kernel API: free functions on tensors that check shapes and dispatch on the device to
// core/cpu/ (and core/cuda/ later). Model layers and optimizers call only these.
//
// Conventions (as in llm.c):
// - Shapes are in the comments: N = rows (B*T), C = channels, OC = out channels, V = vocab.
// - Weights are [out, in] like torch.nn.Linear.
// - Backward kernels ACCUMULATE (+=) into every gradient output, activation or parameter;
//   callers zero buffers where a fresh gradient starts. The exceptions: a gradient that a
//   kernel takes with GradWrite::overwrite (a fresh one written without a zeroing pass first,
//   as a GEMM with beta 0 does: activation gradients, and a linear's weight gradient at a
//   step's first write), and cross_entropy_forward_backward, where backward starts: it
//   overwrites dlogits.
// - Norm statistics, softmax and the loss are computed in fp32 (f64 where noted).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace zt {

// How a backward kernel writes a gradient: added to what the buffer holds, or
// written over it (a fresh gradient: the same values as zeroing it and adding, without the
// pass over memory that zeroing costs).
enum class GradWrite { accumulate, overwrite };

// ---- matmul -------------------------------------------------------------------------------
struct MatmulOptions {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;  // 1 accumulates into out
};
// out (M,N) = alpha * op(a) (M,K) @ op(b) (K,N) + beta * out. Tensors of more than two dims
// are read as 2-D with all leading dims folded into rows.
void matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulOptions& options = {});

// ---- linear -------------------------------------------------------------------------------
// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC)
void linear_forward(Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias);
// dinp (N,C) += dout @ weight;  dweight (OC,C) += dout^T @ inp;  dbias (OC) += sum_rows(dout).
// dinp may be null (first layer); dinp_write = overwrite makes it dinp = dout @ weight, and
// dweight_write = overwrite dweight = dout^T @ inp.
void linear_backward(Tensor* dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                     const Tensor& inp, const Tensor& weight, GradWrite dinp_write = GradWrite::accumulate,
                     GradWrite dweight_write = GradWrite::accumulate);
// On a GPU with bf16/f16 weights, linear_backward's GEMMs read a workspace copy of dout in
// the compute dtype whose rows are this many elements apart: 16-byte aligned rows, which
// cuBLASLt's fast kernels need. Where that pads the rows, dinp's GEMM also reads a copy of
// the weight with as many rows (the memory plan counts both).
int64_t device_dout_row_stride(int64_t cols, DType compute);
// On a GPU, linear_forward's GEMM writes f32 rows. With ZT_CUDA_LINEAR_OUT=aligned, where
// out's rows would not be 16-byte aligned (out features not a multiple of 4), it writes chunks
// of chunk_rows rows into a workspace whose rows are `stride` floats apart and copies each
// into out: with rows of 50257 floats (GPT-2's head) cuBLASLt has only its slow kernels.
// Opt-in until it has run on a GPU; direct (the default) writes out as it is. stride == cols:
// no workspace (the memory plan counts chunk_rows x stride floats otherwise). Any other value
// of the variable is an error naming it.
struct DeviceOutRows {
  int64_t stride, chunk_rows;
};
DeviceOutRows device_out_rows(int64_t rows, int64_t cols);

// ---- norms --------------------------------------------------------------------------------
// LayerNorm over the last dim: out (N,C), mean and rstd (N) saved for backward, bias optional.
void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& inp,
                       const Tensor& weight, const Tensor* bias, float eps);
void layernorm_backward(Tensor& dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                        const Tensor& inp, const Tensor& weight, const Tensor& mean,
                        const Tensor& rstd);
// RMSNorm over the last dim: out = inp * rstd * weight, rstd (N) = 1/sqrt(mean(inp^2) + eps).
void rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& inp, const Tensor& weight, float eps);
void rmsnorm_backward(Tensor& dinp, Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd);

// ---- activations --------------------------------------------------------------------------
// GELU, tanh approximation (GPT-2). Elementwise, any shape.
void gelu_forward(Tensor& out, const Tensor& inp);
void gelu_backward(Tensor& dinp, const Tensor& dout, const Tensor& inp, GradWrite write = GradWrite::accumulate);
// SwiGLU: inp (N,2F) holds [gate | up]; out (N,F) = silu(gate) * up.
void swiglu_forward(Tensor& out, const Tensor& inp);
void swiglu_backward(Tensor& dinp, const Tensor& dout, const Tensor& inp, GradWrite write = GradWrite::accumulate);

// ---- embeddings ---------------------------------------------------------------------------
// out (N,C) = wte (V,C)[tokens (N, i32)] (+ wpe (maxT,C)[n % T] when wpe is given).
void embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                       int64_t T);
// dwte += scatter of dout rows by token; dwpe[t] += sum of dout rows at position t.
void embedding_backward(Tensor& dwte, Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                        int64_t T);

// ---- attention ----------------------------------------------------------------------------
// qkv (B,T,(H+2*KVH)*D) packs per row: H query heads, then KVH key heads, then KVH value heads,
// each D wide. Query head h reads kv head h / (H/KVH) (GQA; KVH == H is MHA).
struct AttnShape {
  int64_t B, T, n_head, n_kv_head, head_dim;
  int64_t qkv_width() const { return (n_head + 2 * n_kv_head) * head_dim; }
};
// Rotary tables for positions [0,T): table (T, D) holds cos in [:, :D/2], sin in [:, D/2:].
Tensor rope_table(int64_t T, int64_t head_dim, float theta);
// Rotates q and k heads of qkv in place (Hugging Face Llama rotate_half: pairs i and i+D/2).
void rope_forward(Tensor& qkv, const Tensor& table, const AttnShape& shape);
// Inverse rotation of dq and dk in dqkv, in place (the adjoint of rope_forward).
void rope_backward(Tensor& dqkv, const Tensor& table, const AttnShape& shape);
// Causal softmax(q k^T / sqrt(D)) v: out (B,T,H*D); lse (B,H,T) f32, each query row's
// log-sum-exp of its scaled scores (natural log), saved for backward with out. No (T,T)
// matrix is stored (FlashAttention-2): saved memory is O(T).
void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv, const AttnShape& shape);
// dqkv (B,T,(H+2*KVH)*D) += gradients of q, k and v, from forward's qkv, out and lse
// (= with GradWrite::overwrite).
void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                        const Tensor& lse, const AttnShape& shape, GradWrite write = GradWrite::accumulate);
// Decoding with a KV cache (shape.B = shape.T = 1): stores qkv's k and v (the newest
// position's) at row `pos` of k_cache and v_cache (capacity, KVH*D) f32, then writes the
// attention of its query heads over cache rows [0, pos] to out (1, H*D).
void attention_decode(Tensor& out, const Tensor& qkv, Tensor& k_cache, Tensor& v_cache, int64_t pos,
                      const AttnShape& shape);

// ---- gated attention (arXiv:2505.06708) ----------------------------------------------------
// out = inp * sigmoid(gate), elementwise, same shapes (N, H*D); the sigmoid is fused in.
void sigmoid_gate_forward(Tensor& out, const Tensor& inp, const Tensor& gate);
// dinp += dout * s;  dgate += dout * inp * s * (1 - s), s = sigmoid(gate).
void sigmoid_gate_backward(Tensor& dinp, Tensor& dgate, const Tensor& dout, const Tensor& inp,
                           const Tensor& gate);

// ---- WorkerTransformer token mixing -------------------------------------------------------
// Causal depthwise Conv1d over time: out (B*T,C)[t] = bias + sum_j weight (C,1,K)[:,0,j] *
// inp[t-(K-1)+j], zero before the start of each sequence (PyTorch Conv1d(C, C, K, groups=C)
// with left padding K-1). Output t reads only inputs <= t.
void causal_conv1d_forward(Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias,
                           int64_t T);
// dinp (B*T,C) += ..., dweight (C,1,K) += ..., dbias (C) += colsum(dout).
void causal_conv1d_backward(Tensor& dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                            const Tensor& inp, const Tensor& weight, int64_t T);
// Worker rows of (B*T, C) are positions t = i*k + k-1 of each sequence, W = T / k of them.
// gather: out (B*W, C) = those rows; scatter: out's worker rows = inp (B*W, C), others kept.
void gather_worker_rows(Tensor& out, const Tensor& inp, int64_t T, int64_t interval);
void scatter_worker_rows(Tensor& out, const Tensor& inp, int64_t T, int64_t interval);

// ---- Mixture of Experts routing ----------------------------------------------------------
// Router: probs (N,E) f32 = softmax(logits (N,E) f32); idx (N,K) i32 = each row's K most
// probable experts, most probable first (ties: the lower index); weights (N,K) f32 = their
// probs, divided by their sum when normalize.
void moe_router_forward(Tensor& probs, Tensor& idx, Tensor& weights, const Tensor& logits, bool normalize);
// dlogits (N,E) += softmax backward of dL/dprobs = dprobs (may be null; the aux loss's part)
// plus what dweights (N,K) sends through the top-k selection and normalization (the selection
// itself is piecewise constant).
void moe_router_backward(Tensor& dlogits, const Tensor* dprobs, const Tensor& dweights, const Tensor& probs,
                         const Tensor& idx, bool normalize);
// Groups the N*K routed slots by expert, each expert's in token order: rows (N*K) i32 = the
// token of each slot; slots (N,K) i32 = where token n's j-th choice sits; offsets (E+1) = where
// expert e's slots start (expert e owns [offsets[e], offsets[e+1])).
void moe_dispatch(Tensor& rows, Tensor& slots, std::vector<int64_t>& offsets, const Tensor& idx, int64_t n_experts);
// Load-balancing loss of each sequence of T rows: aux (B) f32 = E * sum_i f_i * P_i with f_i
// the share of the sequence's T*K slots routed to expert i and P_i the mean of probs[:, i]
// over its rows (Switch Transformer; DeepSeek's per-sequence variant).
void moe_aux_loss_forward(Tensor& aux, const Tensor& probs, const Tensor& idx, int64_t T);
// dprobs (N,E) += scale * d(aux of the row's sequence) / dprobs = scale * E * f_i / T
// (f_i counts discrete choices: no gradient).
void moe_aux_loss_backward(Tensor& dprobs, const Tensor& idx, int64_t T, float scale);
// out (M,C) = inp (N,C)[rows (M) i32], any float dtype (out's = inp's).
void gather_rows(Tensor& out, const Tensor& inp, const Tensor& rows);
// out (N,C) += sum_j weights (N,K)[n,j] * inp (M,C)[slots (N,K)[n,j]], the terms added in
// order j; weights null: 1 (the backward of gather_rows). f32.
void combine_rows(Tensor& out, const Tensor& inp, const Tensor& slots, const Tensor* weights);
// Backward of the weighted combine, every slot used once: dinp[slots[n,j]] += weights[n,j] *
// dout[n]; dweights[n,j] += dout[n] . inp[slots[n,j]].
void combine_rows_backward(Tensor& dinp, Tensor& dweights, const Tensor& dout, const Tensor& inp,
                           const Tensor& slots, const Tensor& weights);

// ---- loss ---------------------------------------------------------------------------------
// losses (N) = -log softmax(logits (N,V))[targets (N, i32)].
void cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets);
// Both at once: losses as above and dlogits = (softmax(logits) - onehot(targets)) * dloss_scale,
// OVERWRITING dlogits, which may alias logits (in place saves an N*V buffer).
void cross_entropy_forward_backward(Tensor& losses, Tensor& dlogits, const Tensor& logits,
                                    const Tensor& targets, float dloss_scale);

// ---- elementwise and reductions -----------------------------------------------------------
void fill(Tensor& t, float value);
void add_inplace(Tensor& y, const Tensor& x);      // y += x (x f32 or bf16)
void axpy(Tensor& y, float a, const Tensor& x);    // y += a * x
void scale_inplace(Tensor& x, float s);            // x *= s
double sum_squares(const Tensor& x);               // sum x^2 accumulated in f64
// total (1) f64 += sum of x (f32), or of x^2: summed in f64 in a fixed order and left where
// total lives (on a GPU: no host wait; a training step reads its totals back once).
void sum_accumulate(Tensor& total, const Tensor& x);
void sum_squares_accumulate(Tensor& total, const Tensor& x);
// Copy with conversion between f32, bf16 and f16 (same numel).
void convert(Tensor& dst, const Tensor& src);

// ---- optimizer updates on flat fp32 shards ------------------------------------------------
struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;             // 1-based, for bias correction
  float grad_scale = 1.0f;  // the update reads grad * grad_scale (clipping, without a pass over grad)
};
// Decoupled weight decay: param -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * param).
// compute (bf16 or f16, param's numel), when given, receives the updated param rounded as
// convert() rounds it: the mixed-precision compute copy, refreshed by the same pass on the CPU.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s,
                  Tensor* compute = nullptr);
struct SgdStep {
  float lr, momentum, weight_decay;
  float grad_scale = 1.0f;  // as in AdamWStep
};
// buf = momentum * buf + (grad + wd * param); param -= lr * buf (buf unused when momentum = 0).
// compute as in adamw_update.
void sgd_update(Tensor& param, const Tensor& grad, Tensor* momentum_buf, const SgdStep& s, Tensor* compute = nullptr);

}  // namespace zt
