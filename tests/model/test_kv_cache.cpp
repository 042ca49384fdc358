// Decoding with a KV cache: the logits of a prompt followed by one token at a time equal the
// logits of one forward over the whole sequence, for both families, GQA, gated attention and
// the WorkerTransformer (whose cache holds only worker positions and the mixer's inputs) and
// MoE blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/kernels.h"
#include "core/rng.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace zt {
namespace {

struct CacheVariant {
  Family family;
  bool gate;
  int64_t interval, conv_width;
  const char* name;
  int64_t n_experts = 0, n_shared_experts = 0;  // MoE (llama)
};

void PrintTo(const CacheVariant& v, std::ostream* os) { *os << v.name; }

ModelSpec spec_of(const CacheVariant& v) {
  ModelSpec s;
  s.family = v.family;
  s.n_layer = 2;
  s.d_model = 32;
  s.vocab_size = 29;
  s.max_seq_len = 24;
  s.init_std = 0.2f;
  s.n_head = 4;
  s.n_kv_head = v.family == Family::gpt2 ? 4 : 2;  // llama: grouped-query attention
  s.d_ff = 40;
  s.tie_embeddings = v.family == Family::gpt2;
  s.attn_bias = true;
  s.attn_gate = v.gate;
  s.worker_interval = v.interval;
  s.worker_conv_width = v.conv_width;
  s.n_experts = v.n_experts;
  s.n_shared_experts = v.n_shared_experts;
  return s;
}

std::vector<int32_t> random_ids(int64_t n, int64_t V) {
  Rng rng(7, 3);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(V));
  return ids;
}

// Logits (n, V) of one forward over ids[first, first + n), with or without the cache.
std::vector<float> run(Transformer& model, const std::vector<int32_t>& ids, int64_t first, int64_t n,
                       KVCache* cache) {
  Stream s;
  s.B = 1;
  s.T = n;
  s.cache = cache;
  s.pos = cache ? cache->pos : 0;
  s.tokens = Tensor::empty({1, n}, DType::i32);
  std::copy(ids.begin() + first, ids.begin() + first + n, s.tokens.data<int32_t>());
  model.forward(s);
  const float* l = s.logits.data<float>();
  return {l, l + n * model.spec().vocab_size};
}

class KVCacheDecoding : public ::testing::TestWithParam<CacheVariant> {};

TEST_P(KVCacheDecoding, PromptThenOneTokenAtATimeEqualsTheFullForward) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel reference(spec), cached(spec);
  const int64_t T = spec.max_seq_len, V = spec.vocab_size;
  const std::vector<int32_t> ids = random_ids(T, V);
  const std::vector<float> full = run(reference.model, ids, 0, T, nullptr);
  // Prompts shorter than a worker interval, ending on and off a worker, and a single token.
  for (int64_t prompt : {1, 3, 4, 7}) {
    SCOPED_TRACE("prompt " + std::to_string(prompt));
    KVCache cache = cached.model.make_kv_cache();
    std::vector<float> got = run(cached.model, ids, 0, prompt, &cache);
    for (int64_t t = prompt; t < T; ++t) {
      const std::vector<float> row = run(cached.model, ids, t, 1, &cache);
      got.insert(got.end(), row.begin(), row.end());
    }
    ASSERT_EQ(cache.pos, T);
    ASSERT_EQ(got.size(), full.size());
    double worst = 0;
    for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - full[i]));
    EXPECT_LT(worst, 2e-5) << "largest logit difference";
  }
}

TEST_P(KVCacheDecoding, TheCacheHoldsOnlyTheAttendedPositions) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel m(spec);
  KVCache cache = m.model.make_kv_cache();
  const int64_t rows = spec.workers() ? spec.max_seq_len / spec.worker_interval : spec.max_seq_len;
  ASSERT_EQ(cache.layers.size(), static_cast<size_t>(spec.n_layer));
  EXPECT_EQ(cache.layers[0].k.dim(0), rows);
  EXPECT_EQ(cache.layers[0].k.dim(1), spec.n_kv_head * spec.head_dim());
  const std::vector<int32_t> ids = random_ids(spec.max_seq_len, spec.vocab_size);
  run(m.model, ids, 0, 5, &cache);
  EXPECT_EQ(cache.layers[1].len, spec.core_rows(5));
  // Past max_seq_len the caller must restart the cache; the model refuses to run off its end.
  for (int64_t t = 5; t < spec.max_seq_len; ++t) run(m.model, ids, t, 1, &cache);
  EXPECT_THROW(run(m.model, ids, 0, 1, &cache), Error);
  cache.reset();
  EXPECT_NO_THROW(run(m.model, ids, 0, 2, &cache));
}

INSTANTIATE_TEST_SUITE_P(
    Models, KVCacheDecoding,
    ::testing::Values(CacheVariant{Family::gpt2, false, 0, 0, "gpt2"},
                      CacheVariant{Family::llama, false, 0, 0, "llama_gqa"},
                      CacheVariant{Family::gpt2, true, 0, 0, "gpt2_gated"},
                      CacheVariant{Family::gpt2, true, 4, 4, "gpt2_workers"},
                      CacheVariant{Family::llama, true, 4, 3, "llama_workers"},
                      CacheVariant{Family::llama, false, 2, 5, "llama_workers_wide_conv"},
                      CacheVariant{Family::llama, false, 0, 0, "llama_moe", 4, 1}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(KVCacheDecodingKernel, AttentionDecodeEqualsTheLastRowOfCausalAttention) {
  const AttnShape full{1, 9, 4, 2, 8};
  const int64_t W = full.qkv_width(), HD = full.n_head * full.head_dim, kv = full.n_kv_head * full.head_dim;
  Tensor qkv = Tensor::empty({full.T, W}, DType::f32);
  Rng rng(3, 1);
  for (int64_t i = 0; i < qkv.numel(); ++i) qkv.data<float>()[i] = rng.next_float() * 2 - 1;
  Tensor out = Tensor::empty({full.T, HD}, DType::f32), lse = Tensor::empty({1, full.n_head, full.T}, DType::f32);
  attention_forward(out, lse, qkv, full);
  Tensor k = Tensor::zeros({full.T, kv}, DType::f32), v = Tensor::zeros({full.T, kv}, DType::f32);
  const AttnShape one{1, 1, full.n_head, full.n_kv_head, full.head_dim};
  Tensor row_out = Tensor::empty({1, HD}, DType::f32);
  for (int64_t t = 0; t < full.T; ++t) {
    attention_decode(row_out, qkv.slice(t, t + 1), k, v, t, one);
    for (int64_t i = 0; i < HD; ++i)
      ASSERT_NEAR(row_out.data<float>()[i], out.data<float>()[t * HD + i], 1e-6) << "t " << t << " i " << i;
  }
  EXPECT_THROW(attention_decode(row_out, qkv.slice(0, 1), k, v, full.T, one), Error);
}

}  // namespace
}  // namespace zt
