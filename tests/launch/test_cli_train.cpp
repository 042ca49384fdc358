// `zt train`, `zt export` and `zt generate` end to end through the binary; per-command help.
#include <gtest/gtest.h>

#include <fstream>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::run_zt;
using testing::TempDir;

// A short run on the bundled corpus: the loss must fall well below its starting point
// (ln 65 = 4.17 for a uniform guess over the character vocabulary).
// --help after a command prints that command's usage and runs nothing; after "--" it belongs
// to what `zt launch` starts.
TEST(CliHelp, EachCommandPrintsItsOwnUsage) {
  for (const std::string command : {"train", "launch", "plan", "ckpt", "report", "data", "eval"}) {
    auto r = run_zt(command + " --help");
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("zt " + command + " ")) << command;
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("error:"))) << command;
  }
  auto r = run_zt("plan -h");
  EXPECT_THAT(r.output, HasSubstr("per-rank memory by stage"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("zt train")));
  r = run_zt("ckpt --help");
  EXPECT_THAT(r.output, HasSubstr("zt ckpt inspect"));
  EXPECT_THAT(r.output, HasSubstr("zt ckpt verify"));
  r = run_zt("launch --nproc-per-node 1 -- /bin/echo --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("usage:")));
  EXPECT_NE(run_zt("bogus --help").exit_code, 0);
}

TEST(CliTrain, LossFallsAndTheRunDirectoryIsComplete) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                  " --set train.steps=200 --set train.log_every=20 --set train.eval_every=100"
                  " --set optim.lr=3e-3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tok/s"));
  const auto run = tmp.path() / "test-tiny-gpt2";
  for (const char* f : {"config.yaml", "metrics.jsonl", "model.safetensors", "vocab.json"})
    EXPECT_TRUE(std::filesystem::exists(run / f)) << f;

  auto metrics = testing::metrics_records(run);
  ASSERT_GE(metrics.size(), 10u);
  for (const auto& m : metrics)
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s"})
      EXPECT_TRUE(m.contains(key)) << key << " missing in " << m.dump();
  const double first = metrics.front()["loss"];
  const size_t n = metrics.size();
  const double last = (metrics[n - 1]["loss"].get<double>() + metrics[n - 2]["loss"].get<double>() +
                       metrics[n - 3]["loss"].get<double>()) / 3;
  EXPECT_GT(first, 3.8);
  EXPECT_LT(last, 3.0) << "loss did not fall: " << first << " -> " << last;
  ASSERT_TRUE(metrics.back().contains("val_loss"));
  EXPECT_LT(metrics.back()["val_loss"].get<double>(), 2.9);
}

TEST(CliTrain, ExportRoundTripsAndGenerateSamplesText) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp.str() +
                  " --set train.steps=5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto run = tmp.path() / "test-tiny-llama";
  const auto out = tmp.path() / "exported.safetensors";
  r = run_zt("export " + run.string() + " -o " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Exported through the model, the weights are bitwise those the run saved.
  SafetensorsFile a = SafetensorsFile::open((run / "model.safetensors").string());
  SafetensorsFile b = SafetensorsFile::open(out.string());
  ASSERT_EQ(a.names(), b.names());
  EXPECT_TRUE(b.contains("lm_head.weight"));
  EXPECT_TRUE(b.contains("model.layers.1.self_attn.k_proj.bias"));
  for (const auto& name : a.names()) {
    Tensor x = a.get(name), y = b.get(name);
    ASSERT_EQ(x.nbytes(), y.nbytes()) << name;
    EXPECT_EQ(0, std::memcmp(x.raw(), y.raw(), x.nbytes())) << name;
  }

  r = run_zt("generate " + run.string() + " --prompt 'ROMEO:' --tokens 40 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ROMEO:"));
  EXPECT_GE(r.output.size(), 40u);
}

TEST(CliTrain, BadInputFailsWithOneMessageAndWritesNothing) {
  TempDir tmp;
  const std::string out = " --set run.out_dir=" + tmp.str() + "/runs";
  struct Case {
    std::string args, message;
  } cases[] = {
      {"train configs/test-tiny-gpt2.yaml --set model.n_heads=3", "model.n_heads"},
      {"train configs/test-tiny-gpt2.yaml --set model.n_layer=zero", "model.n_layer"},
      {"train configs/test-tiny-gpt2.yaml --set data.train=nope.txt", "nope.txt"},
      {"train configs/test-tiny-gpt2.yaml --set model.init_from=missing.safetensors", "missing.safetensors"},
      {"train configs/no-such-config.yaml", "no-such-config.yaml"},
      // Sizes: out of range, cut to int, or too large for this machine's memory.
      {"train configs/test-tiny-gpt2.yaml --set parallel.threads=100000", "parallel.threads"},
      {"train configs/test-tiny-gpt2.yaml --set parallel.threads=4294967297", "parallel.threads"},
      {"train configs/test-tiny-gpt2.yaml --set model.n_layer=1000000000", "model.n_layer"},
      {"train configs/test-tiny-gpt2.yaml --set train.micro_batch=100000000", "train.micro_batch"},
      {"train configs/test-tiny-gpt2.yaml --set train.micro_batch=1000000", "train.micro_batch 1000000"},
      {"train configs/test-tiny-gpt2.yaml --set model.d_model=1000000 --set model.n_head=1000", "model.d_model 1000000"},
      {"train configs/test-tiny-gpt2.yaml --set train.micro_batch=16777216 --set data.seq_len=16777216", "data.seq_len"},
      {"train configs/test-tiny-gpt2.yaml --set train.micro_batch=16777216 --set model.d_model=1048576 --set model.n_head=1024", "per rank"},
  };
  for (const Case& c : cases) {
    auto r = run_zt(c.args + out);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_THAT(r.output, HasSubstr("error:")) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
    EXPECT_FALSE(std::filesystem::exists(tmp.path() / "runs")) << c.args << " wrote files";
  }
}

// runtime.device is checked first at preflight: a run that cannot use its device writes
// nothing, and says which key to change and why.
TEST(CliTrain, RuntimeDeviceCudaIsRefusedBeforeAnythingIsWritten) {
  TempDir tmp;
  const std::string out = " --set run.out_dir=" + tmp.str() + "/runs";
  std::vector<std::pair<std::string, std::string>> cases = {
      {"--set runtime.device=gpu", "runtime.device"},
      {"--set runtime.device=cuda --set model.family=llama --set model.moe.n_experts=2", "model.moe"},
  };
#ifdef ZT_WITH_CUDA
  const std::string why_not = testing::cuda_unavailable();  // the runtime's reason, when there is no GPU
#else
  const std::string why_not = "this zt was built without CUDA";
#endif
  if (!testing::cuda_unavailable().empty()) cases.push_back({"--set runtime.device=cuda", why_not});
  for (const auto& [args, message] : cases) {
    auto r = run_zt("train configs/test-tiny-gpt2.yaml " + args + out);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_THAT(r.output, HasSubstr("runtime.device")) << args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(message)) << args;
    EXPECT_FALSE(std::filesystem::exists(tmp.path() / "runs")) << args << " wrote files";
  }
  // Two ranks where they cannot both have a GPU (none here, or one GPU under NCCL): refused by
  // every rank alike, with one message naming the key and the reason.
  const int gpus = testing::cuda_unavailable().empty() ? testing::visible_gpus() : 0;
  if (gpus >= 2) return;  // two ranks train there (CudaStagedTrain and the NCCL tests cover them)
#ifdef ZT_WITH_NCCL
  const std::string backend = " --set parallel.backend=nccl";
#else
  const std::string backend;  // nccl is a config error here; auto means staged
#endif
  auto r = testing::run_command(testing::mpirun(2) + "'" ZT_BINARY "' train configs/test-tiny-gpt2.yaml "
                                "--set runtime.device=cuda --set parallel.threads=1" + backend + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("runtime.device: cuda"));
  EXPECT_THAT(r.output, HasSubstr(gpus == 0 ? why_not : "LOCAL_RANK 1 needs GPU cuda:1"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "runs")) << "two ranks wrote files";
}

TEST(CliTrain, InitFromRefusesAFileOfAnotherShape) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=2 --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto weights = tmp.path() / "test-tiny-gpt2" / "model.safetensors";
  r = run_zt("train configs/test-tiny-gpt2.yaml --set model.d_model=48 --set run.name=other"
             " --set model.init_from=" + weights.string() + " --set run.out_dir=" + tmp.str());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("transformer.wte.weight"));
  EXPECT_THAT(r.output, HasSubstr("shape"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "other"));
  // The same shape loads, and training starts from those weights.
  r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=2 --set run.name=again"
             " --set model.init_from=" + weights.string() + " --set run.out_dir=" + tmp.str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// A tokenizer with more ids than the model cannot be the one it trained with: generate
// refuses it instead of printing text decoded with the wrong vocabulary.
TEST(CliGenerate, RefusesATokenizerLargerThanTheModel) {
  TempDir tmp;
  {
    std::ofstream small(tmp.path() / "small.txt");
    small << testing::read_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 3000);
  }
  const std::string common = " --set run.out_dir=" + tmp.str() + " --set train.steps=1 --set parallel.threads=1";
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.name=small --set data.train=" + tmp.str() + "/small.txt" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_zt("train configs/test-tiny-gpt2.yaml --set run.name=full" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::filesystem::copy_file(tmp.path() / "full" / "vocab.json", tmp.path() / "small" / "vocab.json",
                             std::filesystem::copy_options::overwrite_existing);
  r = run_zt("generate " + tmp.str() + "/small --tokens 5");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not the one the model was trained with"));
}

}  // namespace
}  // namespace zt
