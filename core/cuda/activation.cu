// Per-element layer kernels: GELU, SwiGLU, the sigmoid output gate, RoPE, embeddings and the
// worker-row gather/scatter. The math is core/math/activation.h, shared with the CPU kernels.
#include <cub/cub.cuh>

#include "core/cuda/common.cuh"
#include "core/math/activation.h"

namespace zt::cuda {

namespace {
constexpr int kThreads = 256;

// inp and out are (n), any float type; the math in f32.
__global__ void gelu_forward_kernel(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t n) {
  ZT_GRID_STRIDE(i, n) store(out, i, out_type, math::gelu(load(inp, i, inp_type)));
}
__global__ void gelu_backward_kernel(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t n) {
  ZT_GRID_STRIDE(i, n) dinp[i] += math::gelu_grad(load(inp, i, inp_type)) * dout[i];
}

// inp (N, 2F) = [gate | up], out (N, F).
__global__ void swiglu_forward_kernel(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t N,
                                      int64_t F) {
  ZT_GRID_STRIDE(i, N * F) {
    const int64_t r = i / F, c = i % F;
    store(out, i, out_type, math::swiglu(load(inp, r * 2 * F + c, inp_type), load(inp, r * 2 * F + F + c, inp_type)));
  }
}
__global__ void swiglu_backward_kernel(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t N,
                                       int64_t F) {
  ZT_GRID_STRIDE(i, N * F) {
    const int64_t r = i / F, c = i % F, g = r * 2 * F + c;
    float dg, du;
    math::swiglu_grad(load(inp, g, inp_type), load(inp, g + F, inp_type), dout[i], dg, du);
    dinp[g] += dg;
    dinp[g + F] += du;
  }
}

__global__ void sigmoid_gate_forward_kernel(void* out, Elem out_type, const void* inp, Elem inp_type,
                                            const void* gate, Elem gate_type, int64_t n) {
  ZT_GRID_STRIDE(i, n) store(out, i, out_type, load(inp, i, inp_type) * math::fast_sigmoid(load(gate, i, gate_type)));
}
__global__ void sigmoid_gate_backward_kernel(float* dinp, float* dgate, const float* dout, const void* inp,
                                             Elem inp_type, const void* gate, Elem gate_type, int64_t n) {
  ZT_GRID_STRIDE(i, n) {
    const float s = math::fast_sigmoid(load(gate, i, gate_type));
    dinp[i] += dout[i] * s;
    dgate[i] += dout[i] * load(inp, i, inp_type) * s * (1.f - s);
  }
}

// x (B*T, width); one thread per rotated pair (row, head, i < D/2).
__global__ void rope_kernel(void* x, Elem x_type, const float* table, int64_t B, int64_t T, int64_t width,
                            int64_t n_heads, int64_t D, float sign) {
  const int64_t half = D / 2;
  ZT_GRID_STRIDE(idx, B * T * n_heads * half) {
    const int64_t i = idx % half, hd = (idx / half) % n_heads, row = idx / (half * n_heads);
    const float* cs = table + (row % T) * D;
    const float c = cs[i], s = sign * cs[half + i];
    const int64_t at = row * width + hd * D + i;
    const float a = load(x, at, x_type), b = load(x, at + half, x_type);
    store(x, at, x_type, a * c - b * s);
    store(x, at + half, x_type, b * c + a * s);
  }
}

// out (N,C) = wte[tokens[n]] (+ wpe[n % T]).
__global__ void embedding_forward_kernel(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                                         int64_t N, int64_t T, int64_t C) {
  ZT_GRID_STRIDE(i, N * C) {
    const int64_t n = i / C, c = i % C;
    float v = wte[static_cast<int64_t>(tokens[n]) * C + c];
    if (wpe) v += wpe[(n % T) * C + c];
    out[i] = v;
  }
}
// dwte, deterministic without float atomics: the rows are sorted by token (a stable radix sort
// of (token, row) pairs), and the block at the first row of each token's run adds that run's
// rows in row order, channels across its threads: per channel the CPU kernel's order, so the
// result equals the CPU's bit for bit, and distinct tokens run in parallel.
__global__ void iota_kernel(int32_t* rows, int64_t N) {
  ZT_GRID_STRIDE(i, N) rows[i] = static_cast<int32_t>(i);
}

__global__ void embedding_backward_runs_kernel(float* dwte, const float* dout, const int32_t* sorted_tokens,
                                               const int32_t* sorted_rows, int64_t N, int64_t C) {
  __shared__ int run_end;
  const int64_t first = blockIdx.x;
  const int32_t token = sorted_tokens[first];
  if (first > 0 && sorted_tokens[first - 1] == token) return;  // not the start of a run
  if (threadIdx.x == 0) run_end = static_cast<int>(N);
  __syncthreads();
  // The run's end: the first later row with another token, blockDim rows at a time.
  for (int64_t base = first + 1; base < N; base += blockDim.x) {
    const int64_t j = base + threadIdx.x;
    if (j < N && sorted_tokens[j] != token) atomicMin(&run_end, static_cast<int>(j));
    __syncthreads();
    const bool found = run_end < static_cast<int>(N);
    __syncthreads();
    if (found) break;
  }
  const int64_t end = run_end;
  float* row = dwte + static_cast<int64_t>(token) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float s = row[c];
#pragma unroll 4
    for (int64_t j = first; j < end; ++j) s += dout[static_cast<int64_t>(sorted_rows[j]) * C + c];
    row[c] = s;
  }
}
// dwpe[t, c] += sum over sequences b (in order) of dout[b*T + t, c].
__global__ void embedding_backward_wpe_kernel(float* dwpe, const float* dout, int64_t B, int64_t T, int64_t C) {
  ZT_GRID_STRIDE(i, T * C) {
    const int64_t t = i / C, c = i % C;
    float s = dwpe[i];
    for (int64_t b = 0; b < B; ++b) s += dout[(b * T + t) * C + c];
    dwpe[i] = s;
  }
}

// Worker row w of sequence b is full row b*T + w*k + k-1; workers (B*W, C), W = T / k.
__global__ void worker_rows_kernel(float* full, float* workers, int64_t B, int64_t T, int64_t C, int64_t k,
                                   bool gather) {
  const int64_t W = T / k;
  ZT_GRID_STRIDE(i, B * W * C) {
    const int64_t c = i % C, w = (i / C) % W, b = i / (C * W);
    const int64_t f = (b * T + w * k + k - 1) * C + c;
    if (gather)
      workers[i] = full[f];
    else
      full[f] = workers[i];
  }
}
}  // namespace

void gelu_forward(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t n) {
  gelu_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(out, out_type, inp, inp_type, n);
  ZT_CUDA_CHECK_LAUNCH(gelu_forward_kernel);
}

void gelu_backward(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t n) {
  gelu_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(dinp, dout, inp, inp_type, n);
  ZT_CUDA_CHECK_LAUNCH(gelu_backward_kernel);
}

void swiglu_forward(void* out, Elem out_type, const void* inp, Elem inp_type, int64_t N, int64_t F) {
  swiglu_forward_kernel<<<grid_for(N * F, kThreads), kThreads, 0, compute_stream()>>>(out, out_type, inp, inp_type,
                                                                                      N, F);
  ZT_CUDA_CHECK_LAUNCH(swiglu_forward_kernel);
}

void swiglu_backward(float* dinp, const float* dout, const void* inp, Elem inp_type, int64_t N, int64_t F) {
  swiglu_backward_kernel<<<grid_for(N * F, kThreads), kThreads, 0, compute_stream()>>>(dinp, dout, inp, inp_type,
                                                                                       N, F);
  ZT_CUDA_CHECK_LAUNCH(swiglu_backward_kernel);
}

void sigmoid_gate_forward(void* out, Elem out_type, const void* inp, Elem inp_type, const void* gate,
                          Elem gate_type, int64_t n) {
  sigmoid_gate_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(out, out_type, inp,
                                                                                        inp_type, gate, gate_type, n);
  ZT_CUDA_CHECK_LAUNCH(sigmoid_gate_forward_kernel);
}

void sigmoid_gate_backward(float* dinp, float* dgate, const float* dout, const void* inp, Elem inp_type,
                           const void* gate, Elem gate_type, int64_t n) {
  sigmoid_gate_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      dinp, dgate, dout, inp, inp_type, gate, gate_type, n);
  ZT_CUDA_CHECK_LAUNCH(sigmoid_gate_backward_kernel);
}

void rope_apply(void* x, Elem x_type, const float* table, int64_t B, int64_t T, int64_t width, int64_t n_heads,
                int64_t D, bool inverse) {
  const int64_t pairs = B * T * n_heads * (D / 2);
  rope_kernel<<<grid_for(pairs, kThreads), kThreads, 0, compute_stream()>>>(x, x_type, table, B, T, width, n_heads,
                                                                            D, inverse ? -1.f : 1.f);
  ZT_CUDA_CHECK_LAUNCH(rope_kernel);
}

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int64_t N, int64_t T,
                       int64_t C) {
  embedding_forward_kernel<<<grid_for(N * C, kThreads), kThreads, 0, compute_stream()>>>(out, tokens, wte, wpe, N,
                                                                                         T, C);
  ZT_CUDA_CHECK_LAUNCH(embedding_forward_kernel);
}

namespace {
// Scratch layout: sorted tokens, row numbers, sorted row numbers (N int32 each, 256-byte
// aligned), then the radix sort's temporary storage.
size_t run_array_bytes(int64_t N) { return (static_cast<size_t>(N) * sizeof(int32_t) + 255) / 256 * 256; }
size_t sort_temp_bytes(int64_t N) {
  size_t bytes = 0;
  ZT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                                static_cast<int32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                static_cast<int32_t*>(nullptr), static_cast<int>(N)));
  return bytes;
}
}  // namespace

size_t embedding_backward_scratch_bytes(int64_t N) { return 3 * run_array_bytes(N) + sort_temp_bytes(N); }

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int64_t N, int64_t T,
                        int64_t C, void* scratch) {
  cudaStream_t stream = compute_stream();
  if (N > 0) {
    char* base = static_cast<char*>(scratch);
    auto* sorted_tokens = reinterpret_cast<int32_t*>(base);
    auto* rows = reinterpret_cast<int32_t*>(base + run_array_bytes(N));
    auto* sorted_rows = reinterpret_cast<int32_t*>(base + 2 * run_array_bytes(N));
    size_t temp_bytes = sort_temp_bytes(N);
    iota_kernel<<<grid_for(N, kThreads), kThreads, 0, stream>>>(rows, N);
    ZT_CUDA_CHECK_LAUNCH(iota_kernel);
    ZT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(base + 3 * run_array_bytes(N), temp_bytes, tokens, sorted_tokens,
                                                  rows, sorted_rows, static_cast<int>(N), 0, 32, stream));
    embedding_backward_runs_kernel<<<static_cast<unsigned>(N), 256, 0, stream>>>(dwte, dout, sorted_tokens,
                                                                                 sorted_rows, N, C);
    ZT_CUDA_CHECK_LAUNCH(embedding_backward_runs_kernel);
  }
  if (dwpe) {
    embedding_backward_wpe_kernel<<<grid_for(T * C, kThreads), kThreads, 0, stream>>>(dwpe, dout, N / T, T, C);
    ZT_CUDA_CHECK_LAUNCH(embedding_backward_wpe_kernel);
  }
}

void gather_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k) {
  const int64_t n = B * (T / k) * C;
  worker_rows_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(const_cast<float*>(inp), out, B, T,
                                                                               C, k, /*gather=*/true);
  ZT_CUDA_CHECK_LAUNCH(worker_rows_kernel);
}

void scatter_worker_rows(float* out, const float* inp, int64_t B, int64_t T, int64_t C, int64_t k) {
  const int64_t n = B * (T / k) * C;
  worker_rows_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(out, const_cast<float*>(inp), B, T,
                                                                               C, k, /*gather=*/false);
  ZT_CUDA_CHECK_LAUNCH(worker_rows_kernel);
}

}  // namespace zt::cuda
