#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "parallel/sampler.h"

namespace zt {
namespace {

SamplerOptions opts(int64_t world, int64_t rank, bool shuffle = true) {
  return {7, 103, shuffle, 24, 3, world, rank};
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& micro) {
  std::vector<int64_t> out;
  for (const auto& m : micro) out.insert(out.end(), m.begin(), m.end());
  return out;
}

TEST(Sampler, RankSlicesAreDisjointAndCoverTheGlobalBatchAtAnyWorldSize) {
  for (int64_t world : {1, 2, 4}) {
    std::vector<DistributedSampler> ranks;
    for (int64_t r = 0; r < world; ++r) ranks.emplace_back(opts(world, r));
    DistributedSampler reference(opts(1, 0));
    for (int64_t k = 0; k < 10; ++k) {  // crosses epoch boundaries (103 samples, 24 per batch)
      std::vector<int64_t> global;
      for (auto& s : ranks) {
        auto micro = s.next_batch();
        EXPECT_EQ(static_cast<int64_t>(micro.size()), 24 / (3 * world));
        auto ids = flatten(micro);
        global.insert(global.end(), ids.begin(), ids.end());
      }
      EXPECT_EQ(global, reference.global_batch_ids(k)) << "world " << world << " batch " << k;
      if (k < 4) {  // within the first epoch no id repeats
        std::set<int64_t> unique(global.begin(), global.end());
        EXPECT_EQ(unique.size(), global.size());
      }
    }
  }
}

TEST(Sampler, EachEpochIsAPermutationAndSeedsDiffer) {
  DistributedSampler s({1, 96, true, 24, 24, 1, 0});
  std::vector<int64_t> epoch0, epoch1;
  for (int k = 0; k < 4; ++k) {
    auto ids = flatten(s.next_batch());
    epoch0.insert(epoch0.end(), ids.begin(), ids.end());
  }
  for (int k = 0; k < 4; ++k) {
    auto ids = flatten(s.next_batch());
    epoch1.insert(epoch1.end(), ids.begin(), ids.end());
  }
  auto sorted0 = epoch0;
  std::sort(sorted0.begin(), sorted0.end());
  for (int64_t i = 0; i < 96; ++i) EXPECT_EQ(sorted0[i], i);
  EXPECT_NE(epoch0, epoch1);
  DistributedSampler other({2, 96, true, 24, 24, 1, 0});
  EXPECT_NE(flatten(other.next_batch()), std::vector<int64_t>(epoch0.begin(), epoch0.begin() + 24));
  DistributedSampler ordered({1, 96, false, 24, 24, 1, 0});
  auto ids = flatten(ordered.next_batch());
  for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(ids[i], i);
}

TEST(Sampler, ResumingFromAConsumedCountContinuesTheSameStream) {
  DistributedSampler a(opts(2, 1));
  for (int k = 0; k < 5; ++k) a.next_batch();
  DistributedSampler b(opts(2, 1));
  b.set_consumed_samples(a.consumed_samples());
  for (int k = 0; k < 5; ++k) EXPECT_EQ(a.next_batch(), b.next_batch());
}

TEST(Sampler, GlobalBatchMustSplitEvenly) {
  try {
    DistributedSampler s({1, 100, true, 20, 3, 2, 0});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("train.global_batch (20) must be a multiple of train.micro_batch (3) x world size (2)"));
  }
}

}  // namespace
}  // namespace zt
