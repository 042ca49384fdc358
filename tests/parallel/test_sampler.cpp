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

TEST(Sampler, MicroBatchesAreTheRankSliceInStreamOrder) {
  // 4 ranks, GB 24, micro 3: rank r owns positions [6r, 6r + 6) as two micro-batches.
  DistributedSampler reference(opts(1, 0));
  for (int64_t r = 0; r < 4; ++r) {
    DistributedSampler s(opts(4, r));
    for (int64_t k = 0; k < 6; ++k) {
      const auto global = reference.global_batch_ids(k);
      const auto micro = s.next_batch();
      ASSERT_EQ(micro.size(), 2u);
      ASSERT_EQ(s.grad_accum(), 2);
      for (int64_t m = 0; m < 2; ++m)
        for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(micro[m][j], global[6 * r + 3 * m + j]);
    }
  }
}

TEST(Sampler, RankSlicesAreDisjointWithinABatch) {
  // 103 samples and 24 per batch. A batch inside one epoch holds no sample twice; batches 4
  // and 8 straddle an epoch boundary, where a sample may recur from the next epoch.
  for (int64_t world : {2, 4}) {
    for (int64_t k = 0; k < 9; ++k) {
      const bool straddles = (k * 24) / 103 != (k * 24 + 23) / 103;
      std::vector<std::set<int64_t>> slices;
      for (int64_t r = 0; r < world; ++r) {
        DistributedSampler s(opts(world, r));
        s.set_consumed_samples(k * 24);
        auto ids = flatten(s.next_batch());
        slices.emplace_back(ids.begin(), ids.end());
        if (!straddles) {
          EXPECT_EQ(slices.back().size(), ids.size());
        }
      }
      if (straddles) continue;
      for (int64_t a = 0; a < world; ++a)
        for (int64_t b = a + 1; b < world; ++b)
          for (int64_t id : slices[a]) EXPECT_EQ(slices[b].count(id), 0u) << "batch " << k;
    }
  }
}

TEST(Sampler, UnshuffledStreamWrapsAcrossEpochsSeamlessly) {
  DistributedSampler s({3, 10, false, 4, 2, 1, 0});
  EXPECT_EQ(s.epoch(), 0);
  std::vector<int64_t> stream;
  for (int k = 0; k < 5; ++k) {
    auto ids = flatten(s.next_batch());
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(stream, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(s.consumed_samples(), 20);
  EXPECT_EQ(s.epoch(), 2);
}

TEST(Sampler, ShuffledEpochsArePermutationsAcrossBatchBoundaries) {
  // 10 samples, batches of 4: each run of 10 stream positions is one epoch's permutation.
  DistributedSampler s({11, 10, true, 4, 1, 2, 1});
  DistributedSampler all({11, 10, true, 4, 1, 1, 0});
  std::vector<int64_t> stream;
  for (int64_t k = 0; k < 15; ++k) {
    auto ids = all.global_batch_ids(k);
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  std::set<std::vector<int64_t>> orders;
  for (int e = 0; e < 6; ++e) {
    std::vector<int64_t> epoch(stream.begin() + 10 * e, stream.begin() + 10 * e + 10);
    orders.insert(epoch);
    std::sort(epoch.begin(), epoch.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(epoch[i], i) << "epoch " << e;
  }
  EXPECT_GT(orders.size(), 4u);  // epochs are reshuffled
  // The rank-1 sampler sees positions 2, 3 of each batch of that same stream.
  for (int64_t k = 0; k < 15; ++k) EXPECT_EQ(flatten(s.next_batch()), (std::vector<int64_t>{stream[4 * k + 2], stream[4 * k + 3]}));
}

TEST(Sampler, ResumeMidEpochAtAnotherWorldSizeContinuesTheStream) {
  // A run at world 1 stopped after 3 batches resumes at world 2 with the same global batches.
  DistributedSampler one(opts(1, 0));
  for (int k = 0; k < 3; ++k) one.next_batch();
  std::vector<DistributedSampler> two = {DistributedSampler(opts(2, 0)), DistributedSampler(opts(2, 1))};
  for (auto& s : two) s.set_consumed_samples(one.consumed_samples());
  EXPECT_EQ(two[0].epoch(), 0);
  for (int k = 0; k < 6; ++k) {
    auto global = flatten(one.next_batch());
    auto a = flatten(two[0].next_batch()), b = flatten(two[1].next_batch());
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(a, global) << "batch " << 3 + k;
  }
}

TEST(Sampler, NonPositiveSizesAreErrors) {
  for (const SamplerOptions& o : {SamplerOptions{0, 10, true, 4, 0, 1, 0}, SamplerOptions{0, 10, true, 4, 2, 0, 0},
                                  SamplerOptions{0, 10, true, 0, 2, 1, 0}}) {
    try {
      DistributedSampler s(o);
      FAIL();
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("must be positive"));
    }
  }
  EXPECT_THROW(DistributedSampler({0, 0, true, 4, 2, 1, 0}), Error);
  EXPECT_THROW(DistributedSampler({0, 10, true, 4, 2, 2, 2}), Error);
}

}  // namespace
}  // namespace zt
