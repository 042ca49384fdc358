// TensorBoard event files: the record framing and Event encoding against bytes TensorBoard's
// own Python writer produces, and a training run read back by TensorBoard's reader.
#include <gtest/gtest.h>

#include <filesystem>
#include <fmt/format.h>
#include <gmock/gmock.h>

#include "core/crc32c.h"
#include "launch/tensorboard.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

// Reference values from the tensorboard package (2.21.0):
//   from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
//   from tensorboard.summary.writer.record_writer import RecordWriter  (into an io.BytesIO)
TEST(TensorBoardFormat, MaskedCrcAndRecordFramingMatchTensorBoard) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xe3069283u);  // CRC-32C's published check value
  EXPECT_EQ(masked_crc32c(check.data(), check.size()), 0xc78ab0e5u);
  EXPECT_EQ(hex(tfrecord("hello")), "0500000000000000" "eab2043e" "68656c6c6f" "bb1f1c19");
  EXPECT_EQ(hex(tfrecord("")), "0000000000000000" "29039807" "d8ea82a2");
}

// Reference bytes: tensorboard.compat.proto.event_pb2.Event(...).SerializeToString().
TEST(TensorBoardFormat, EventsEncodeAsProtobufDoes) {
  EXPECT_EQ(hex(file_version_event(1.5)), "09000000000000f83f1a0d627261696e2e4576656e743a32");
  EXPECT_EQ(hex(scalars_event(1.5, 7, {{"train/loss", 2.5f}, {"optim/lr", 1e-3f}})),
            "09000000000000f83f10072a240a110a0a747261696e2f6c6f737315000020400a0f0a086f7074696d2f6c72156f12833a");
  EXPECT_EQ(hex(scalars_event(1.5, 300, {})), "09000000000000f83f10ac022a00");
  EXPECT_EQ(hex(restart_event(1.5, 5)), "09000000000000f83f10053a020801");  // session_log START
}

TEST(TensorBoardScalars, MirrorTheMetricsRecord) {
  const nlohmann::json rec = {{"step", 5}, {"loss", 2.0}, {"val_loss", 1.5}, {"lr", 1e-3},
                              {"memory", {{"params", 100}, {"peak", {{"params", 120}}}}},
                              {"world_size", 2}, {"ranks", nlohmann::json::array({{{"rank", 0}}})}};
  const Scalars s = tensorboard_scalars(rec);
  const Scalars want = {{"train/loss", 2.0f}, {"val/loss", 1.5f}, {"optim/lr", 1e-3f},
                        {"memory/params", 100.f}, {"memory/peak/params", 120.f}};
  EXPECT_EQ(s, want);
}

::testing::AssertionResult tensorboard_reads(const fs::path& run, int files) {
  const std::string python = ZT_PYTHON;
  if (!fs::exists(python))
    return ::testing::AssertionFailure() << "Python with tensorboard not found at " << python
                                         << ": run scripts/install-deps.sh (it creates .venv)";
  auto r = run_command("'" + python + "' tests/tools/tensorboard_check.py '" + run.string() + "' --files " +
                       std::to_string(files));
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "tensorboard_check.py:\n" << r.output;
  return ::testing::AssertionSuccess() << r.output;
}

// Killed after logging step 6 and resumed from the checkpoint of step 4: two events files,
// which TensorBoard reads as one series holding every scalar of metrics.jsonl at its step,
// step 6 once, as the resumed run logged it.
TEST(TensorBoardRun, TensorBoardReadsEveryLoggedScalarAcrossAResume) {
  TempDir tmp;
  const std::string args = "train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                           " --set train.steps=8 --set train.log_every=2 --set train.eval_every=4"
                           " --set checkpoint.every=4 --set log.tensorboard=true";
  auto r = run_command("ZT_TEST_FAULT=sigkill@7 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + args);
  ASSERT_NE(r.exit_code, 0) << r.output;
  r = run_zt(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  const fs::path run = tmp.path() / "test-tiny-gpt2";
  EXPECT_TRUE(tensorboard_reads(run, 2));

  // Off by default.
  r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.name=plain --set run.out_dir=" + tmp.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& e : fs::directory_iterator(tmp.path() / "plain"))
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr("tfevents")));
}

}  // namespace
}  // namespace zt
