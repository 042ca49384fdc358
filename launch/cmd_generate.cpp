#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/rng.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/run_loader.h"
#include "model/kv_cache.h"

namespace zt {

namespace {

// Samples from softmax(logits / temperature) restricted to the top_k largest (0 = all);
// temperature 0 is greedy.
int64_t sample_token(const float* logits, int64_t V, double temperature, int64_t top_k, Rng& rng) {
  if (temperature <= 0) return std::max_element(logits, logits + V) - logits;
  std::vector<int64_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  int64_t k = top_k > 0 ? std::min(top_k, V) : V;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  const double max_logit = logits[ids[0]];
  std::vector<double> p(k);
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - max_logit) / temperature);
  double r = static_cast<double>(rng.next_float()) * sum;
  for (int64_t i = 0; i < k; ++i) {
    r -= p[i];
    if (r <= 0) return ids[i];
  }
  return ids[k - 1];
}

}  // namespace

int cmd_generate(const Args& args) {
  CliArgs cli("generate", args, {"prompt", "tokens", "temperature", "top-k", "seed", "weights"});
  cli.expect_positionals(1, 1);
  const int64_t n_tokens = cli.get_int("tokens", 200, 0, int64_t(1) << 40);
  const double temperature = cli.get_double("temperature", 1.0, 0, 1e6);
  const int64_t top_k = cli.get_int("top-k", 0, 0, int64_t(1) << 40);
  LoadedRun run = load_run(cli.positional(0, "RUN_DIR"), cli.get_or("weights", ""));
  if (!run.tokenizer) fail("zt generate: the run has no tokenizer (vocab.json), so text cannot be decoded; it trained on token files with data.tokenizer: none and no <stem>.vocab.json beside them");
  Transformer& model = run.model->model;
  const ModelSpec& spec = model.spec();

  std::string prompt = cli.get_or("prompt", "\n");
  if (prompt.empty()) prompt.push_back('\n');  // (assigning a literal trips GCC 12's -Wrestrict)
  // The model may have more ids than the tokenizer (a vocabulary padded to a multiple of 64):
  // never sample those. Fewer means another tokenizer than the one it trained with.
  const int64_t vocab = run.tokenizer->vocab_size();
  if (vocab > spec.vocab_size)
    fail("zt generate: the run's tokenizer has {} ids but the model only {}: the tokenizer is not the one the model "
         "was trained with", vocab, spec.vocab_size);
  std::vector<uint32_t> ids = run.tokenizer->encode(prompt);
  Rng rng(static_cast<uint64_t>(cli.get_int("seed", 1337)), /*stream=*/0x67656e);
  std::fputs(prompt.c_str(), stdout);
  // Each token costs one row through the model: the cache keeps every layer's keys and
  // values. When the context reaches max_seq_len, it restarts from the last half of it (one
  // forward over those tokens), so long generations cost O(T) per token, not O(T^2).
  KVCache cache = model.make_kv_cache();
  Tensor tokens = Tensor::empty({1, spec.max_seq_len}, DType::i32, MemTag::activations);
  Stream s;
  s.B = 1;
  s.cache = &cache;
  auto feed = [&](const uint32_t* first, int64_t n) {
    s.T = n;
    s.pos = cache.pos;
    s.tokens = tokens.reshape({tokens.numel()}).slice(0, n).reshape({1, n});
    for (int64_t t = 0; t < n; ++t) s.tokens.data<int32_t>()[t] = static_cast<int32_t>(first[t]);
    model.forward(s);
  };
  const int64_t context = std::min<int64_t>(static_cast<int64_t>(ids.size()), spec.max_seq_len);
  feed(ids.data() + ids.size() - context, context);
  for (int64_t n = 0; n < n_tokens; ++n) {
    const float* last = s.logits.data<float>() + (s.T - 1) * spec.vocab_size;
    const auto next = static_cast<uint32_t>(sample_token(last, vocab, temperature, top_k, rng));
    ids.push_back(next);
    std::fputs(run.tokenizer->decode(std::span<const uint32_t>(&next, 1)).c_str(), stdout);
    std::fflush(stdout);
    if (n + 1 == n_tokens) break;
    if (cache.pos == spec.max_seq_len) {
      cache.reset();
      const int64_t keep = std::max<int64_t>(1, spec.max_seq_len / 2);
      feed(ids.data() + ids.size() - keep, keep);
    } else {
      feed(&next, 1);
    }
  }
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace zt
