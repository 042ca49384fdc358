// The engine's gradients at stage 0 on the CPU: zero_grads leaves them stale (no pass over
// them; Unit::mark_grads_stale) and backward overwrites or zeroes each at its first write.
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

// A step whose gradients start stale (the last step's, never zeroed) ends with bitwise the
// gradients of an engine whose buffers held zeros: for GPT-2 (a tied head, which overwrites
// the embedding's gradient that the embedding then adds to; learned positions; biases),
// Llama (an untied head, no biases), a Mixture of Experts and a WorkerTransformer, with one
// micro-batch and with three (the later ones add to the first), in fp32 and bf16.
TEST(EngineGradients, StaleGradientsNeverReachAStep) {
  for (const char* config : {"test-tiny-gpt2", "test-tiny-llama", "test-tiny-moe", "test-tiny-worker-gpt2"})
    for (const char* precision : {"fp32", "bf16"})
      for (int micro : {1, 3}) {
        SCOPED_TRACE(::testing::Message() << config << " " << precision << ", " << micro << " micro-batches");
        const Config cfg = load_config(testing::source_dir() + "/configs/" + config + ".yaml",
                                       {"precision.compute=" + std::string(precision), "model.vocab_size=61"});
        BenchModel stale(cfg), fresh(cfg);
        accumulate(stale, 1, micro);  // leaves batch 1's gradients behind
        accumulate(stale, 2, micro);
        accumulate(fresh, 2, micro);
        const auto units = stale.model.units(), fresh_units = fresh.model.units();
        ASSERT_EQ(units.size(), fresh_units.size());
        bool nonzero = false;
        for (size_t u = 0; u < units.size(); ++u) {
          const Tensor& g = units[u]->flat_grads();
          EXPECT_TRUE(same_bits(g, fresh_units[u]->flat_grads())) << "unit " << units[u]->name();
          for (int64_t i = 0; i < g.numel() && !nonzero; ++i) nonzero = g.data<float>()[i] != 0.f;
        }
        EXPECT_TRUE(nonzero) << "no gradient at all";
      }
}

}  // namespace
}  // namespace zt
