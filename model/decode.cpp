// Incremental decoding through a block: the prompt runs as an ordinary forward whose saved
// keys, values and mixer inputs then fill the cache; each later token runs one row through
// the same layers, its attention reading the cache (attention_decode) instead of the context.
#include <algorithm>
#include <cstring>

#include "core/kernels.h"
#include "model/block.h"

namespace zt {

namespace {

// Rows [first, first + n) of a 2-D tensor as f32 (a copy when it is stored in another dtype).
Tensor f32_rows(const Tensor& t, int64_t first, int64_t n) {
  Tensor rows = t.slice(first, first + n);
  if (rows.dtype() == DType::f32) return rows;
  Tensor out = Tensor::empty(rows.shape(), DType::f32, MemTag::workspace);
  convert(out, rows);
  return out;
}

}  // namespace

void Block::fill_cache(KVCacheLayer& cache, int64_t T) const {
  const BlockActivations& v = *act_;
  const int64_t Tc = spec_.core_rows(T), q_width = spec_.n_head * spec_.head_dim();
  const int64_t kv_width = cache.k.dim(1), width = qkv_.out;
  ZT_CHECK(Tc <= cache.k.dim(0), "a prompt of {} positions overflows the KV cache's {} rows", Tc, cache.k.dim(0));
  if (Tc > 0) {
    const Tensor qkv = f32_rows(v.qkv, 0, Tc);  // rotated in place by the forward
    const float* src = qkv.data<float>();
    float* k = cache.k.data<float>();
    float* val = cache.v.data<float>();
    for (int64_t r = 0; r < Tc; ++r) {
      std::memcpy(k + r * kv_width, src + r * width + q_width, sizeof(float) * kv_width);
      std::memcpy(val + r * kv_width, src + r * width + q_width + kv_width, sizeof(float) * kv_width);
    }
  }
  cache.len = Tc;
  if (!spec_.workers()) return;
  // The next position's conv reads the K - 1 inputs before it.
  const int64_t n = std::min<int64_t>(T, spec_.worker_conv_width - 1);
  if (n > 0) {
    Tensor dst = cache.mix_history.slice(0, n);
    convert(dst, v.lnmix.slice(T - n, T));
  }
  cache.mix_len = n;
}

void Block::decode(Stream& s) {
  ZT_CHECK(!checkpointed(), "block {}: decoding with a KV cache needs the block's activations (no checkpointing)",
           layer_);
  ZT_CHECK(s.B == 1, "decoding runs one sequence, got {}", s.B);
  KVCacheLayer& cache = s.cache->layers.at(layer_);
  x_in_ = s.x;
  if (s.pos == 0) {  // the prompt
    ensure_buffers(s.B, s.T);
    run_forward(s.B, s.T, /*output=*/true);
    fill_cache(cache, s.T);
    s.x = y_;
    return;
  }
  ZT_CHECK(s.T == 1, "after the prompt, decoding appends one token at a time, got {}", s.T);
  const int64_t C = spec_.d_model;
  ensure(y_, {1, C});
  if (!spec_.workers()) {
    ensure_core_buffers(1, 1);
    core_forward(x_in_, &y_, 1, 1, &cache);
    s.x = y_;
    return;
  }
  // x1 = x + Conv(NormMix(x)) at this position: the conv over the window of the last K
  // normed inputs (fewer at the start, where the conv pads with zeros), its last row.
  BlockActivations& v = *act_;
  ensure(v.lnmix, {1, C}, MemTag::activations, act_dtype_);
  ensure(v.meanmix, {1});
  ensure(v.rstdmix, {1});
  norm_mix_.forward(v.lnmix, v.meanmix, v.rstdmix, x_in_);
  const int64_t K = spec_.worker_conv_width;
  Tensor& history = cache.mix_history;
  if (cache.mix_len == K) {  // drop the oldest row
    float* h = history.data<float>();
    std::memmove(h, h + C, sizeof(float) * (K - 1) * C);
    --cache.mix_len;
  }
  Tensor slot = history.slice(cache.mix_len, cache.mix_len + 1);
  convert(slot, v.lnmix);
  const int64_t n = ++cache.mix_len;
  Tensor& mixed = scratch_->mix;
  ensure(mixed, {n, C}, MemTag::workspace);
  conv_.forward(mixed, history.slice(0, n), n);
  std::memcpy(y_.data<float>(), mixed.data<float>() + (n - 1) * C, sizeof(float) * C);
  add_inplace(y_, x_in_);
  // A worker (t = k-1 mod k) runs the core on x1; other positions keep x1.
  if (s.pos % spec_.worker_interval != spec_.worker_interval - 1) {
    s.x = y_;
    return;
  }
  ensure_core_buffers(1, 1);
  Tensor& row = scratch_->rows;
  ensure(row, {1, C}, MemTag::workspace);
  core_forward(y_, &row, 1, 1, &cache);
  std::memcpy(y_.data<float>(), row.data<float>(), sizeof(float) * C);
  s.x = y_;
}

}  // namespace zt
