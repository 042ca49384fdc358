// The state of incremental decoding (`zt generate`): per block, the keys and values of the
// positions seen so far, rotated already, so each new token costs one row through every
// layer instead of a forward over the whole context. A WorkerTransformer block attends over
// its worker positions only, so its cache holds T / k rows, and it also keeps the mixer's
// last normed inputs, which its causal conv reads.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace zt {

struct KVCacheLayer {
  Tensor k, v;          // (capacity, n_kv_head * head_dim) f32
  int64_t len = 0;      // rows filled: the positions (or workers) attended over so far
  Tensor mix_history;   // workers: (conv width, C) f32, the mixer's last normed inputs, oldest first
  int64_t mix_len = 0;  // rows of mix_history filled
};

struct KVCache {
  std::vector<KVCacheLayer> layers;
  int64_t pos = 0;  // tokens seen: the position of the next one
  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& l : layers) n += l.k.nbytes() + l.v.nbytes() + (l.mix_history.defined() ? l.mix_history.nbytes() : 0);
    return n;
  }
  // Forget every position; the buffers stay allocated.
  void reset() {
    pos = 0;
    for (auto& l : layers) l.len = l.mix_len = 0;
  }
};

}  // namespace zt
