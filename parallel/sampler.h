// Distributed sampler. The global sample stream is a function of (seed, epoch, consumed
// samples) only, never of the world size: global batch k holds the same samples at any
// world size, and a run resumed from a consumed-sample count continues the same stream.
//
// Stream position p is sample perm_e(p mod S) of epoch e = p / S (S samples, perm_e a seeded
// permutation, the identity without shuffle). Global batch k covers positions
// [k GB, (k+1) GB); rank r owns the contiguous slice [r GB/W, (r+1) GB/W) of it, cut into
// grad_accum micro-batches.
#pragma once
#include <cstdint>
#include <vector>

namespace zt {

struct SamplerOptions {
  uint64_t seed = 0;
  int64_t num_samples = 0;
  bool shuffle = true;
  int64_t global_batch = 1;
  int64_t micro_batch = 1;
  int64_t world_size = 1;
  int64_t rank = 0;
};

class DistributedSampler {
 public:
  explicit DistributedSampler(const SamplerOptions& options);

  // This rank's micro-batches of the next global batch; advances by one global batch.
  std::vector<std::vector<int64_t>> next_batch();
  // The whole global batch k, in stream order (all ranks' slices).
  std::vector<int64_t> global_batch_ids(int64_t k);

  int64_t consumed_samples() const { return consumed_; }
  void set_consumed_samples(int64_t consumed);
  int64_t epoch() const { return consumed_ / options_.num_samples; }
  int64_t grad_accum() const { return grad_accum_; }

 private:
  int64_t sample_at(int64_t position);  // stream position -> sample id

  SamplerOptions options_;
  int64_t grad_accum_ = 1;
  int64_t consumed_ = 0;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace zt
