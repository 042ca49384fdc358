// When stage 3 gathers parameters: once per unit in forward, kept from the last module into
// backward, and never for a backward that reads none (the embedding's).
#include <gtest/gtest.h>

#include <cmath>

#include "bench/bench_model.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

BenchModel stage_model(const char* config, int stage) {
  return BenchModel(load_config(testing::source_dir() + "/configs/" + config + ".yaml",
                                {"model.vocab_size=61", "parallel.zero_stage=" + std::to_string(stage)}));
}

int64_t all_gathers(const BenchModel& m) { return m.comm->stats().calls[static_cast<int>(CommOp::all_gather)]; }

// The chain is embed, blocks, final norm, head (the head on the embed unit when tied, on the
// final unit otherwise). Forward gathers each unit where its run of modules starts: L + 3
// tied (the embed unit twice), L + 2 untied. Backward starts with the unit forward ended on,
// still gathered; then gathers the final unit when tied (the head's was the embed unit) and
// each block, and not the embedding, whose backward only adds dx into its gradient.
TEST(EngineGathering, StageThreeGathersEachUseOnceAndNothingBackwardDoesNotRead) {
  for (const char* config : {"test-tiny-gpt2", "test-tiny-llama"}) {
    SCOPED_TRACE(config);
    BenchModel m = stage_model(config, 3);
    const int64_t L = m.spec.n_layer;
    const bool tied = m.spec.tie_embeddings;
    m.engine.zero_grads();
    m.engine.begin_micro_batch(true);
    Stream s = m.micro_batch(1.f / static_cast<float>(m.B * m.T));
    m.comm->reset_stats();
    m.model.forward(s, &m.engine);
    EXPECT_EQ(all_gathers(m), tied ? L + 3 : L + 2) << "forward";
    m.comm->reset_stats();
    m.model.backward(s, &m.engine);
    EXPECT_EQ(all_gathers(m), tied ? L + 1 : L) << "backward";
    for (Unit* u : m.model.units()) EXPECT_FALSE(u->bound()) << u->name() << " still gathered after backward";

    // A forward alone (evaluation) keeps nothing gathered for a backward.
    Stream eval;
    eval.B = m.B;
    eval.T = m.T;
    eval.tokens = m.tokens;
    eval.targets = m.targets;
    m.engine.begin_micro_batch(false);
    m.model.forward(eval, &m.engine);
    for (Unit* u : m.model.units()) EXPECT_FALSE(u->bound()) << u->name() << " still gathered after evaluation";
  }
}

// The unit kept gathered for a backward that never comes is dropped by the step, so the next
// forward gathers the updated parameters: its loss is stage 0's.
TEST(EngineGathering, AForwardWithoutItsBackwardLeavesNoStaleParameters) {
  for (const char* config : {"test-tiny-gpt2", "test-tiny-llama"}) {
    SCOPED_TRACE(config);
    double loss[2] = {};
    for (int i = 0; i < 2; ++i) {
      BenchModel m = stage_model(config, i == 0 ? 0 : 3);
      const float scale = 1.f / static_cast<float>(m.B * m.T);
      m.engine.zero_grads();
      m.engine.begin_micro_batch(true);
      Stream s = m.micro_batch(scale);
      m.model.forward(s, &m.engine);
      m.model.backward(s, &m.engine);
      m.engine.step(1e-2f);  // AdamW's moments now move the parameters at every step
      m.engine.zero_grads();
      m.engine.begin_micro_batch(true);
      Stream abandoned = m.micro_batch(scale);
      m.model.forward(abandoned, &m.engine);  // no backward
      m.engine.step(1e-2f);
      Stream next = m.micro_batch(scale);
      next.need_backward = false;
      m.engine.begin_micro_batch(false);
      m.model.forward(next, &m.engine);
      loss[i] = next.loss_sum;
    }
    EXPECT_TRUE(std::isfinite(loss[0]));
    EXPECT_NEAR(loss[1], loss[0], 1e-6 * std::fabs(loss[0]));
  }
}

}  // namespace
}  // namespace zt
