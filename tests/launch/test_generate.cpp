// `zt generate` with its KV cache against greedy decoding by whole forwards: the same text,
// also past max_seq_len, where the context restarts from the last half of the window.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "launch/run_loader.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using testing::run_zt;
using testing::TempDir;

// What the cached generation must print, computed with a full forward over the context for
// every token (the context restarts as zt generate's does when it reaches max_seq_len).
std::string greedy_by_full_forwards(LoadedRun& run, const std::string& prompt, int64_t n_tokens) {
  Transformer& model = run.model->model;
  const int64_t max_T = model.spec().max_seq_len, V = model.spec().vocab_size;
  std::vector<uint32_t> ids = run.tokenizer->encode(prompt);
  size_t start = ids.size() > static_cast<size_t>(max_T) ? ids.size() - max_T : 0;
  std::string text = prompt;
  for (int64_t n = 0; n < n_tokens; ++n) {
    if (static_cast<int64_t>(ids.size() - start) > max_T) start = ids.size() - std::max<int64_t>(1, max_T / 2);
    const int64_t T = static_cast<int64_t>(ids.size() - start);
    Stream s;
    s.B = 1;
    s.T = T;
    s.tokens = Tensor::empty({1, T}, DType::i32);
    for (int64_t t = 0; t < T; ++t) s.tokens.data<int32_t>()[t] = static_cast<int32_t>(ids[start + t]);
    model.forward(s);
    const float* last = s.logits.data<float>() + (T - 1) * V;
    const auto next = static_cast<uint32_t>(std::max_element(last, last + run.tokenizer->vocab_size()) - last);
    ids.push_back(next);
    text += run.tokenizer->decode(std::span<const uint32_t>(&next, 1));
  }
  return text + "\n";
}

TEST(Generate, CachedDecodingPrintsWhatWholeForwardsWouldPastTheContextLength) {
  TempDir tmp;
  // Barely trained, with large weights: greedy decoding of a trained tiny model settles on
  // one character, which would hide a wrong context.
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                  " --set train.steps=1 --set model.init_std=0.5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string run_dir = (tmp.path() / "test-tiny-gpt2").string();
  // max_seq_len 16: 40 tokens restart the context twice.
  r = testing::run_command("(OMP_NUM_THREADS=1 '" ZT_BINARY "' generate " + run_dir +
                           " --prompt 'KING:' --tokens 40 --temperature 0 2>/dev/null)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  LoadedRun run = load_run(run_dir);
  ASSERT_EQ(run.model->model.spec().max_seq_len, 16);
  EXPECT_EQ(r.output, greedy_by_full_forwards(run, "KING:", 40));
}

}  // namespace
}  // namespace zt
