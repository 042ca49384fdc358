// `zt export -o DIR/` and `model.init_from: DIR` through the binary: directories the
// reference readers (safetensors, transformers' AutoConfig, tokenizers) accept, fine-tuning
// from one, and refusals that name the key and write nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

// tests/tools/hf_dir_check.py on DIR: its JSON summary, or a failure with its output.
// With `transformers`, AutoConfig reads config.json too (a second or two of imports).
::testing::AssertionResult check_with_reference(const fs::path& dir, nlohmann::json* summary, bool transformers) {
  const std::string python = ZT_PYTHON;
  if (!fs::exists(python))
    return ::testing::AssertionFailure() << "Python with safetensors, numpy and transformers not found at " << python
                                         << ": run scripts/install-deps.sh, or configure with -DZT_PYTHON=...";
  auto r = run_command("'" + python + "' tests/tools/hf_dir_check.py '" + dir.string() + "'" +
                       (transformers ? " --transformers" : ""));
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "hf_dir_check.py: " << r.output;
  // The summary is the last line (transformers may log a notice about PyTorch before it).
  const std::string out = r.output.substr(0, r.output.find_last_not_of('\n') + 1);
  *summary = nlohmann::json::parse(out.substr(out.rfind('\n') + 1));
  return ::testing::AssertionSuccess();
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

struct Family {
  const char* name;
  std::string train_args;
  const char* model_type;
};
void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }

// The first 30k characters of the bundled corpus: runs that tokenize it start fast.
fs::path small_corpus(const TempDir& tmp) {
  const fs::path p = tmp.path() / "small.txt";
  std::ofstream(p) << testing::read_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 30000);
  return p;
}

class HfExport : public ::testing::TestWithParam<Family> {};

// A tiny trained run exported with a shard limit below its size: the reference readers find
// every tensor once, with the shapes config.json implies.
TEST_P(HfExport, ShardedDirectoryReadsBackWithTheReferenceReaders) {
  TempDir tmp;
  const Family f = GetParam();
  auto r = run_zt("train " + f.train_args + " --set train.steps=1 --set run.name=src --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path out = tmp.path() / "hf";
  r = run_zt("export " + tmp.str() + "/src -o " + out.string() + "/ --max-shard-size 20KB");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sharded weights"));
  EXPECT_THAT(r.output, HasSubstr("tokenizer.json (written for the run's char tokenizer)"));
  EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
  nlohmann::json summary;
  ASSERT_TRUE(check_with_reference(out, &summary, true));
  EXPECT_EQ(summary["model_type"], f.model_type);
  EXPECT_TRUE(summary["transformers"].is_string()) << summary.dump();
  EXPECT_GE(summary["shards"].get<int>(), 3);
  const nlohmann::json config = read_json(out / "config.json");
  EXPECT_EQ(config["vocab_size"], 65);  // tinyshakespeare's characters
  EXPECT_FALSE(config.contains("bos_token_id"));  // unknown for a char vocabulary
}

INSTANTIATE_TEST_SUITE_P(
    Families, HfExport,
    ::testing::Values(Family{"gpt2", "configs/test-tiny-gpt2.yaml", "gpt2"},
                      Family{"llama", "configs/test-tiny-llama.yaml --set model.attn_bias=false", "llama"},
                      Family{"qwen2", "configs/test-tiny-llama.yaml", "qwen2"},
                      Family{"mixtral", "configs/test-tiny-moe.yaml --set model.moe.n_shared_experts=0", "mixtral"},
                      Family{"qwen2_moe", "configs/test-tiny-moe.yaml --set model.attn_bias=true --set model.moe.every_n_layers=2",
                             "qwen2_moe"}),
    [](const auto& info) { return std::string(info.param.name); });

// The parameter count `zt plan` prints for a config.
std::string planned_params(const std::string& args) {
  auto r = run_zt("plan " + args + " --world 1");
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.output, m, std::regex(R"((\d+) params)"))) return "plan failed: " + r.output;
  return m[1];
}

// Fine-tuning: a YAML that sets no model key starts from the exported directory, `zt plan`
// sees the same model, and exporting the new run gives the same config.json (bos/eos ids
// included) and weights (a step at lr 1e-30 moves no weight measurably).
TEST(HfFineTune, AYamlWithoutModelKeysTrainsFromTheDirectoryAndExportsItBack) {
  TempDir tmp;
  const fs::path text = small_corpus(tmp);
  auto r = run_zt("train configs/test-tiny-llama.yaml --set train.steps=2 --set run.name=src --set data.train=" +
                  text.string() + " --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path hf = tmp.path() / "hf";
  r = run_zt("export " + tmp.str() + "/src -o " + hf.string() + " --max-shard-size 30kb");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(hf / "model.safetensors.index.json"));
  // Token ids a downloaded config.json carries travel to the fine-tuned export.
  nlohmann::json config = read_json(hf / "config.json");
  config["bos_token_id"] = 1;
  config["eos_token_id"] = 2;
  std::ofstream(hf / "config.json") << config.dump(2);
  const fs::path yaml = tmp.path() / "finetune.yaml";
  std::ofstream(yaml) << "run:\n  name: tuned\n  out_dir: " << tmp.str() << "\nmodel:\n  init_from: " << hf.string()
                      << "\ndata:\n  train: " << text.string() << "\n  tokenizer: char\n  seq_len: 16\n"
                      << "train:\n  micro_batch: 2\n  steps: 1\noptim:\n  lr: 1.0e-30\n";
  EXPECT_EQ(planned_params(yaml.string()), planned_params("configs/test-tiny-llama.yaml --set data.train=" + text.string()));
  r = run_zt("train " + yaml.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("model.init_from: Hugging Face directory " + hf.string()));
  EXPECT_THAT(r.output, HasSubstr("llama 2 layers, d_model 32"));
  const fs::path back = tmp.path() / "back";
  r = run_zt("export " + tmp.str() + "/tuned -o " + back.string() + "/");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(back / "config.json"), config);
  const auto [all, worst] = testing::weight_difference((back / "model.safetensors").string(),
                                                       (tmp.path() / "src" / "model.safetensors").string());
  EXPECT_LT(worst, 1e-6);
}

// A run on a BPE tokenizer exports it as tokenizer.json, and a YAML that names no tokenizer
// trains with the directory's.
TEST(HfFineTune, TheTokenizerTravelsWithTheDirectory) {
  TempDir tmp;
  const fs::path tok = tmp.path() / "tok.json";
  auto r = run_command("'" ZT_PYTHON "' tests/tools/hf_dir_check.py --make-tokenizer '" + tok.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path text = small_corpus(tmp);
  r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.name=src --set data.tokenizer=" +
             tok.string() + " --set data.train=" + text.string() + " --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path hf = tmp.path() / "hf";
  r = run_zt("export " + tmp.str() + "/src -o " + hf.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokenizer.json"));
  EXPECT_EQ(testing::read_file(hf / "tokenizer.json"), testing::read_file(tok));
  nlohmann::json summary;
  ASSERT_TRUE(check_with_reference(hf, &summary, false));
  EXPECT_EQ(summary["tokenizer_vocab"], read_json(hf / "config.json")["vocab_size"]);

  const fs::path yaml = tmp.path() / "finetune.yaml";
  std::ofstream(yaml) << "run:\n  name: tuned\n  out_dir: " << tmp.str() << "\nmodel:\n  init_from: " << hf.string()
                      << "\ndata:\n  train: " << text.string() << "\n  seq_len: 16\ntrain:\n  micro_batch: 2\n  steps: 1\n";
  r = run_zt("train " + yaml.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokenizer: its tokenizer.json"));
  EXPECT_TRUE(fs::exists(tmp.path() / "tuned" / "tokenizer.json"));
}

// Char and byte runs export a tokenizer.json written for them (its ids checked against
// tokenizers in test_hf_tokenizer_json.cpp), and fine-tuning from the directory reads it back.
TEST(HfFineTune, CharAndByteRunsExportATokenizerJsonThatFineTuningReads) {
  TempDir tmp;
  const fs::path text = small_corpus(tmp);
  for (const std::string kind : {"char", "byte"}) {
    SCOPED_TRACE(kind);
    auto r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.name=src-" + kind +
                    " --set data.tokenizer=" + kind + " --set data.train=" + text.string() + " --set run.out_dir=" + tmp.str());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const fs::path hf = tmp.path() / ("hf-" + kind);
    r = run_zt("export " + tmp.str() + "/src-" + kind + " -o " + hf.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("tokenizer.json (written for the run's " + kind + " tokenizer)"));
    nlohmann::json summary;
    ASSERT_TRUE(check_with_reference(hf, &summary, false));
    EXPECT_EQ(summary["tokenizer_vocab"], read_json(hf / "config.json")["vocab_size"]);
    const fs::path yaml = tmp.path() / ("finetune-" + kind + ".yaml");
    std::ofstream(yaml) << "run:\n  name: tuned-" << kind << "\n  out_dir: " << tmp.str() << "\nmodel:\n  init_from: "
                        << hf.string() << "\ndata:\n  train: " << text.string()
                        << "\n  seq_len: 16\ntrain:\n  micro_batch: 2\n  steps: 1\n";
    r = run_zt("train " + yaml.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("tokenizer: its tokenizer.json"));
  }
}

TEST(HfFineTune, ImportRefusalsNameTheKeyOrFileAndWriteNothing) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-llama.yaml --set train.steps=1 --set run.name=src --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path hf = tmp.path() / "hf";
  r = run_zt("export " + tmp.str() + "/src -o " + hf.string() + "/ --max-shard-size 20KB");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string train = "train configs/test-tiny-llama.yaml --set run.name=tuned --set run.out_dir=" + tmp.str() +
                            " --set model.init_from=" + hf.string();
  auto refused = [&](const std::string& args, const std::string& message) {
    auto res = run_zt(args);
    EXPECT_NE(res.exit_code, 0) << args;
    EXPECT_THAT(res.output, HasSubstr("error:")) << args;
    EXPECT_THAT(res.output, HasSubstr(message)) << args;
    EXPECT_FALSE(fs::exists(tmp.path() / "tuned")) << args << " wrote a run directory";
  };
  // The YAML's model keys agree with config.json; a --set that disagrees is named.
  refused(train + " --set model.n_head=2",
          "model.n_head: --set model.n_head says 2, " + (hf / "config.json").string() + " (num_attention_heads) says 4");
  const std::string shard = read_json(hf / "model.safetensors.index.json")["weight_map"]["lm_head.weight"];
  fs::rename(hf / shard, tmp.path() / "moved");
  refused(train, "shard " + shard + " not found");
  fs::rename(tmp.path() / "moved", hf / shard);
  nlohmann::json config = read_json(hf / "config.json");
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4}};
  std::ofstream(hf / "config.json") << config.dump();
  refused(train, "rope_scaling");
}

TEST(HfFineTune, ADirectoryExportRefusesWhatTransformersCannotLoadAndLeavesNothing) {
  TempDir tmp;
  // Gated attention has no transformers class: a directory export is refused, nothing is
  // left, and the single-file export still works.
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set model.attn_gate=true --set train.steps=1 --set run.name=gated"
             " --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_zt("export " + tmp.str() + "/gated -o " + tmp.str() + "/gated-hf/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("model.attn_gate"));
  EXPECT_FALSE(fs::exists(tmp.path() / "gated-hf"));
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr(".tmp"))) << "left behind";
  r = run_zt("export " + tmp.str() + "/gated -o " + tmp.str() + "/gated.safetensors");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_zt("export " + tmp.str() + "/gated -o " + tmp.str() + "/g.safetensors --max-shard-size 1MB");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--max-shard-size applies to a directory export"));
}

}  // namespace
}  // namespace zt
