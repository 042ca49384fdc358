#include "parallel/sampler.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace zt {

DistributedSampler::DistributedSampler(const SamplerOptions& o) : options_(o) {
  if (o.num_samples <= 0) fail("the dataset has no samples");
  if (o.global_batch <= 0 || o.micro_batch <= 0 || o.world_size <= 0)
    fail("train.global_batch ({}), train.micro_batch ({}) and the world size ({}) must be positive",
         o.global_batch, o.micro_batch, o.world_size);
  if (o.rank < 0 || o.rank >= o.world_size) fail("rank {} outside world of {}", o.rank, o.world_size);
  const int64_t per_step = o.micro_batch * o.world_size;
  if (o.global_batch % per_step != 0)
    fail("train.global_batch ({}) must be a multiple of train.micro_batch ({}) x world size ({}) = {}",
         o.global_batch, o.micro_batch, o.world_size, per_step);
  grad_accum_ = o.global_batch / per_step;
}

void DistributedSampler::set_consumed_samples(int64_t consumed) {
  if (consumed < 0) fail("consumed samples must be >= 0, got {}", consumed);
  consumed_ = consumed;
}

int64_t DistributedSampler::sample_at(int64_t position) {
  const int64_t S = options_.num_samples;
  const int64_t e = position / S, i = position % S;
  if (!options_.shuffle) return i;
  if (e != cached_epoch_) {
    // Fisher-Yates driven by a counter-based stream per (seed, epoch).
    perm_.resize(S);
    std::iota(perm_.begin(), perm_.end(), int64_t{0});
    Rng rng(options_.seed, 0x73616d70ull + static_cast<uint64_t>(e));
    for (int64_t k = S - 1; k > 0; --k) std::swap(perm_[k], perm_[rng.below(static_cast<uint64_t>(k) + 1)]);
    cached_epoch_ = e;
  }
  return perm_[i];
}

std::vector<int64_t> DistributedSampler::global_batch_ids(int64_t k) {
  std::vector<int64_t> ids(options_.global_batch);
  for (int64_t j = 0; j < options_.global_batch; ++j) ids[j] = sample_at(k * options_.global_batch + j);
  return ids;
}

std::vector<std::vector<int64_t>> DistributedSampler::next_batch() {
  const int64_t per_rank = options_.global_batch / options_.world_size;
  const int64_t start = consumed_ + options_.rank * per_rank;
  std::vector<std::vector<int64_t>> micro(grad_accum_);
  for (int64_t m = 0; m < grad_accum_; ++m) {
    micro[m].resize(options_.micro_batch);
    for (int64_t j = 0; j < options_.micro_batch; ++j)
      micro[m][j] = sample_at(start + m * options_.micro_batch + j);
  }
  consumed_ += options_.global_batch;
  return micro;
}

}  // namespace zt
