// The engine's gradients on the CPU: zero_grads leaves them stale (no pass over them;
// Unit::mark_grads_stale, and at stages 1-3 the optimizer's shard too) and backward
// overwrites or zeroes each at its first write.
#include <gtest/gtest.h>

#include <cstring>

#include "bench/bench_model.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

void fill_tokens(Tensor& t, int64_t vocab, uint64_t stream) {
  Rng rng(7, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(vocab));
}

// One step's forward and backward over `micro` micro-batches of batch `seed` (no update).
void accumulate(BenchModel& m, uint64_t seed, int micro) {
  m.engine.zero_grads();
  for (int k = 0; k < micro; ++k) {
    fill_tokens(m.tokens, m.spec.vocab_size, 2 * (seed * micro + k));
    fill_tokens(m.targets, m.spec.vocab_size, 2 * (seed * micro + k) + 1);
    m.engine.begin_micro_batch(k + 1 == micro);
    Stream s = m.micro_batch(1.f / static_cast<float>(m.B * m.T * micro));
    m.model.forward(s, &m.engine);
    m.model.backward(s, &m.engine);
  }
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The parameters one unit's optimizer owns on this rank (every stage; stage 3's full ones
// are not resident between steps).
Tensor owned_params(Engine& engine, size_t unit) {
  for (auto& [name, t] : engine.owned_state(unit).tensors)
    if (name == "params") return t;
  ADD_FAILURE() << "no params in unit " << unit << "'s state";
  return Tensor();
}

// A step whose gradients start stale (the last step's, never zeroed) ends with bitwise the
// gradients, gradient norm and updated parameters of an engine whose buffers held zeros: for
// GPT-2 (a tied head, which overwrites the embedding's gradient that the embedding then adds
// to; learned positions; biases), Llama (an untied head, no biases), a Mixture of Experts and
// a WorkerTransformer, with one micro-batch and with three (the later ones add to the first),
// in fp32 and bf16, at every ZeRO stage (stages 1-3 also leave the optimizer's gradient shard
// stale, and stages 2-3 allocate the full gradients without zeroing them).
TEST(EngineGradients, StaleGradientsNeverReachAStep) {
  for (const char* config : {"test-tiny-gpt2", "test-tiny-llama", "test-tiny-moe", "test-tiny-worker-gpt2"})
    for (const char* precision : {"fp32", "bf16"})
      for (int stage = 0; stage <= 3; ++stage)
        for (int micro : {1, 3}) {
          SCOPED_TRACE(::testing::Message() << config << " " << precision << ", stage " << stage << ", " << micro
                                            << " micro-batches");
          const Config cfg = load_config(testing::source_dir() + "/configs/" + config + ".yaml",
                                         {"precision.compute=" + std::string(precision), "model.vocab_size=61",
                                          "parallel.zero_stage=" + std::to_string(stage)});
          BenchModel stale(cfg), fresh(cfg);
          accumulate(stale, 1, micro);  // leaves batch 1's gradients behind
          accumulate(stale, 2, micro);
          accumulate(fresh, 2, micro);
          const auto units = stale.model.units(), fresh_units = fresh.model.units();
          ASSERT_EQ(units.size(), fresh_units.size());
          if (stage < 2) {  // the full gradients are resident
            bool nonzero = false;
            for (size_t u = 0; u < units.size(); ++u) {
              const Tensor& g = units[u]->flat_grads();
              EXPECT_TRUE(same_bits(g, fresh_units[u]->flat_grads())) << "unit " << units[u]->name();
              for (int64_t i = 0; i < g.numel() && !nonzero; ++i) nonzero = g.data<float>()[i] != 0.f;
            }
            EXPECT_TRUE(nonzero) << "no gradient at all";
          }
          const StepStats a = stale.engine.step(1e-2f), b = fresh.engine.step(1e-2f);
          EXPECT_GT(b.grad_norm, 0.0);
          EXPECT_EQ(a.grad_norm, b.grad_norm);
          for (size_t u = 0; u < units.size(); ++u)
            EXPECT_TRUE(same_bits(owned_params(stale.engine, u), owned_params(fresh.engine, u)))
                << "unit " << units[u]->name() << "'s updated parameters";
        }
}

// A step with no backward at all updates with zero gradients, not the last step's.
TEST(EngineGradients, AStepWithoutBackwardSeesNoGradient) {
  for (int stage = 0; stage <= 3; ++stage) {
    SCOPED_TRACE(::testing::Message() << "stage " << stage);
    const Config cfg = load_config(testing::source_dir() + "/configs/test-tiny-llama.yaml",
                                   {"model.vocab_size=61", "parallel.zero_stage=" + std::to_string(stage)});
    BenchModel m(cfg);
    accumulate(m, 1, 1);
    EXPECT_GT(m.engine.step(1e-2f).grad_norm, 0.0);
    m.engine.zero_grads();
    EXPECT_EQ(m.engine.step(1e-2f).grad_norm, 0.0);
  }
}

}  // namespace
}  // namespace zt
