// `zt eval` end to end: on the val file of a run, with the trainer's number of eval batches,
// it reproduces the val_loss the run logged, from the final weights and from a checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "core/data/token_file.h"
#include "parallel/checkpoint_format.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_zt;
using testing::TempDir;

// The --json line of a `zt eval` (logs may come before it).
nlohmann::json eval_json(const std::string& args) {
  auto r = run_zt("eval " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  const size_t at = r.output.rfind("\n{");
  const std::string line = r.output.substr(at == std::string::npos ? 0 : at + 1);
  try {
    return nlohmann::json::parse(line);
  } catch (const std::exception&) {
    ADD_FAILURE() << "no JSON line in: " << r.output;
    return {{"loss", NAN}, {"tokens", -1}, {"samples", -1}};
  }
}

double val_loss_at(const fs::path& run, int64_t step) {
  const auto by_step = testing::metrics_by_step(run);
  const auto it = by_step.find(step);
  if (it == by_step.end() || !it->second.contains("val_loss")) {
    ADD_FAILURE() << "no val_loss at step " << step << " in " << (run / "metrics.jsonl");
    return NAN;
  }
  return it->second["val_loss"].get<double>();
}

void expect_close(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want)) << what;
}

// A stretch of the bundled corpus (ASCII, so one char token per byte) as a val text.
fs::path write_val_text(const fs::path& dir, size_t bytes) {
  const std::string corpus = testing::read_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt");
  const fs::path p = dir / "val.txt";
  std::ofstream(p) << corpus.substr(corpus.size() / 2, bytes);
  return p;
}

TEST(Eval, ReproducesTheTrainersValLossFromTheRunAndFromACheckpoint) {
  TempDir tmp;
  const fs::path val = write_val_text(tmp.path(), 5009);
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                  " --set train.steps=10 --set train.eval_every=5 --set train.eval_batches=7"
                  " --set checkpoint.every=5 --set data.val=" + val.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = tmp.path() / "test-tiny-gpt2";
  const double val5 = val_loss_at(run, 5), val10 = val_loss_at(run, 10);

  // 7 batches of train.micro_batch 4 samples of data.seq_len 16, as the trainer read them.
  nlohmann::json j = eval_json(run.string() + " --data " + val.string() + " --batches 7");
  expect_close(j["loss"].get<double>(), val10, "run directory");
  EXPECT_EQ(j["samples"], 28);
  EXPECT_EQ(j["tokens"], 28 * 16);
  expect_close(j["perplexity"].get<double>(), std::exp(val10), "perplexity");
  // The token file the trainer prepared from the same text reads the same samples.
  j = eval_json(run.string() + " --data " + (run / "data" / "val" / "val.train.bin").string() + " --batches 7");
  expect_close(j["loss"].get<double>(), val10, "prepared token file");
  // The same tokens as nanoGPT's headerless uint16 file; its note goes to stderr, so stdout
  // is the JSON line alone.
  {
    const TokenFile prepared = TokenFile::open((run / "data" / "val" / "val.train.bin").string());
    std::vector<uint16_t> raw(prepared.size());
    for (int64_t i = 0; i < prepared.size(); ++i) raw[i] = static_cast<uint16_t>(prepared[i]);
    std::ofstream(tmp.path() / "val-nanogpt.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(raw.data()), static_cast<std::streamsize>(raw.size() * 2));
  }
  r = testing::run_command("{ OMP_NUM_THREADS=1 '" ZT_BINARY "' eval " + run.string() + " --data " +
                           (tmp.path() / "val-nanogpt.bin").string() + " --batches 7 --json 2>/dev/null; }");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  expect_close(nlohmann::json::parse(r.output)["loss"].get<double>(), val10, "nanoGPT token file");
  // A checkpoint holds the weights of its step: step 5's val loss, not step 10's.
  j = eval_json((run / "checkpoints" / checkpoint_name(5)).string() + " --data " + val.string() + " --batches 7");
  expect_close(j["loss"].get<double>(), val5, "checkpoint of step 5");
  EXPECT_GT(std::abs(val5 - val10), 1e-4) << "the two evaluations cannot tell the checkpoints apart";

  // Without --batches: every sample of the file (5008 targets = 313 samples of 16, the last
  // of 79 batches short), the same mean as one sample per batch.
  j = eval_json(run.string() + " --data " + val.string());
  EXPECT_EQ(j["samples"], 313);
  EXPECT_EQ(j["tokens"], 313 * 16);
  EXPECT_EQ(j["batches"], 79);
  const nlohmann::json one_by_one = eval_json(run.string() + " --data " + val.string() + " --batch-size 1 --batches 313");
  EXPECT_EQ(one_by_one["samples"], 313);
  expect_close(j["loss"].get<double>(), one_by_one["loss"].get<double>(), "batch size 1");
  // Shorter windows: more samples of 8.
  j = eval_json(run.string() + " --data " + val.string() + " --seq-len 8");
  EXPECT_EQ(j["samples"], 626);

  r = run_zt("eval " + run.string() + " --data " + val.string() + " --batches 7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(fmt::format("loss {:.6f} | perplexity {:.4f} | 448 tokens", val10, std::exp(val10))));
}

// A run on token files (llm.c format, no tokenizer) in bf16: eval reads the val token file and
// computes in the run's precision, as the trainer did.
TEST(Eval, ReproducesAMixedPrecisionTokenFileRun) {
  TempDir tmp;
  auto r = run_zt("data prepare data/tinyshakespeare.txt -o " + tmp.str() + "/data --tokenizer char");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path data = tmp.path() / "data";
  r = run_zt("train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp.str() +
             " --set train.steps=6 --set train.eval_every=6 --set train.eval_batches=5 --set data.tokenizer=none"
             " --set data.train=" + (data / "tinyshakespeare.train.bin").string() +
             " --set data.val=" + (data / "tinyshakespeare.val.bin").string() + " --set precision.compute=bf16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = tmp.path() / "test-tiny-llama";
  const nlohmann::json j =
      eval_json(run.string() + " --data " + (data / "tinyshakespeare.val.bin").string() + " --batches 5");
  expect_close(j["loss"].get<double>(), val_loss_at(run, 6), "bf16 token-file run");
  EXPECT_EQ(j["samples"], 20);
}

std::vector<std::string> tree(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::string entry = fs::relative(e.path(), root).string();
    if (e.is_regular_file()) entry += fmt::format(":{}", e.file_size());
    out.push_back(std::move(entry));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Eval, BadInputFailsNamingTheFileAndWritesNothing) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=2 --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = tmp.path() / "test-tiny-gpt2";
  const std::string bad_ids = (tmp.path() / "bad_ids.bin").string();
  write_token_file(bad_ids, std::vector<uint32_t>(100, 70000));  // the run's vocabulary has 65 ids
  const std::string short_file = (tmp.path() / "short.bin").string();
  write_token_file(short_file, std::vector<uint32_t>(10, 1));
  const std::string foreign = (tmp.path() / "foreign.txt").string();
  std::ofstream(foreign) << "plain text, then a character the run never saw: \u20ac\n";
  const auto before = tree(tmp.path());
  struct Case {
    std::string args, message;
  } cases[] = {
      {run.string() + " --data " + tmp.str() + "/missing.bin", "missing.bin"},
      {run.string() + " --data " + bad_ids, bad_ids + ": token id 70000 at position 0 >= vocab_size"},
      {run.string() + " --data " + short_file, short_file},
      {run.string() + " --data " + foreign, foreign},
      {tmp.str() + "/no-such-run --data " + bad_ids, "no-such-run"},
      {run.string(), "--data"},
      {run.string() + " --data " + short_file + " --seq-len 17", "--seq-len"},
      {run.string() + " --data " + short_file + " --batches 0", "--batches"},
  };
  for (const Case& c : cases) {
    r = run_zt("eval " + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("error: ")) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
  }
  EXPECT_EQ(tree(tmp.path()), before);
}

}  // namespace
}  // namespace zt
