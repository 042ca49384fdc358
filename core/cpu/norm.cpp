#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/cpu/reduce.h"

namespace zt::cpu {

namespace {
template <typename Out>
void layernorm_forward_impl(Out* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                            int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += x[c];
    float m = s / static_cast<float>(C);
    // Corrected two-pass variance: no cancellation for large means, and the residual sum of
    // (x - m) repairs the rounding error of the first-pass mean.
    float v = 0.f, resid = 0.f;
#pragma omp simd reduction(+ : v, resid)
    for (int64_t c = 0; c < C; ++c) {
      const float d = x[c] - m;
      v += d * d;
      resid += d;
    }
    const float dm = resid / static_cast<float>(C);
    m += dm;
    const float var = std::max(v / static_cast<float>(C) - dm * dm, 0.f);
    const float r = 1.f / std::sqrt(var + eps);
    Out* y = out + n * C;
    if (b) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) store(y + c, (x[c] - m) * r * w[c] + b[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) store(y + c, (x[c] - m) * r * w[c]);
    }
    mean[n] = m;
    rstd[n] = r;
  }
}
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t N, int64_t C, float eps) {
  layernorm_forward_impl(out, mean, rstd, inp, w, b, N, C, eps);
}
void layernorm_forward(Bf16* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t N, int64_t C, float eps) {
  layernorm_forward_impl(out, mean, rstd, inp, w, b, N, C, eps);
}

namespace {
// One row of LayerNorm's backward: dx += its input gradient; acc[0, C) += g * xhat (dw) and,
// with db, acc[C, 2C) += g. A function of its own, every pointer a parameter: inside a lambda
// that reached w through its closure GCC vectorized w[c] as a gather (vgatherqps per 8
// values), most of the pass's time.
inline void layernorm_backward_row(float* dx, float* acc, const float* g, const float* x, const float* w, float m,
                                   float r, int64_t C, bool db) {
  float sum_g = 0.f, sum_gx = 0.f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int64_t c = 0; c < C; ++c) {
    const float gw = g[c] * w[c];
    sum_g += gw;
    sum_gx += gw * (x[c] - m) * r;
  }
  const float mg = sum_g / static_cast<float>(C), mgx = sum_gx / static_cast<float>(C);
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = (x[c] - m) * r;
    dx[c] += r * (g[c] * w[c] - mg - xhat * mgx);
    acc[c] += g[c] * xhat;
  }
  if (db) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc[C + c] += g[c];
  }
}
}  // namespace

// dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * w (llm.c's derivation).
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int64_t width = db ? 2 * C : C;
  std::vector<float> pgrads(width, 0.f);
  reduce_rows_into(pgrads.data(), width, N, [&](int64_t begin, int64_t end, float* acc) {
    for (int64_t n = begin; n < end; ++n)
      layernorm_backward_row(dinp + n * C, acc, dout + n * C, inp + n * C, w, mean[n], rstd[n], C, db != nullptr);
  });
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) dw[c] += pgrads[c];
  if (db) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) db[c] += pgrads[C + c];
  }
}

namespace {
template <typename Out>
void rmsnorm_forward_impl(Out* out, float* rstd, const float* inp, const float* w, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
    const float r = 1.f / std::sqrt(ss / static_cast<float>(C) + eps);
    Out* y = out + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) store(y + c, x[c] * r * w[c]);
    rstd[n] = r;
  }
}
}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int64_t N, int64_t C, float eps) {
  rmsnorm_forward_impl(out, rstd, inp, w, N, C, eps);
}
void rmsnorm_forward(Bf16* out, float* rstd, const float* inp, const float* w, int64_t N, int64_t C, float eps) {
  rmsnorm_forward_impl(out, rstd, inp, w, N, C, eps);
}

namespace {
// One row of RMSNorm's backward: dx += its input gradient, acc += g * xhat (dw); a function
// of its own for the reason layernorm_backward_row is.
inline void rmsnorm_backward_row(float* dx, float* acc, const float* g, const float* x, const float* w, float r,
                                 int64_t C) {
  float sum_gx = 0.f;
#pragma omp simd reduction(+ : sum_gx)
  for (int64_t c = 0; c < C; ++c) sum_gx += g[c] * w[c] * x[c] * r;
  const float mgx = sum_gx / static_cast<float>(C);
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = x[c] * r;
    dx[c] += r * (g[c] * w[c] - xhat * mgx);
    acc[c] += g[c] * xhat;
  }
}
}  // namespace

// dinp = rstd * (g - xhat * mean(g * xhat)) with g = dout * w, xhat = x * rstd.
void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                      const float* rstd, int64_t N, int64_t C) {
  reduce_rows_into(dw, C, N, [&](int64_t begin, int64_t end, float* acc) {
    for (int64_t n = begin; n < end; ++n)
      rmsnorm_backward_row(dinp + n * C, acc, dout + n * C, inp + n * C, w, rstd[n], C);
  });
}

}  // namespace zt::cpu
