// `zt report`: a run's metrics.jsonl and config.yaml rendered into an HTML page.
// Input: metrics.jsonl, then after a NUL byte config.yaml (absent when there is no NUL).
#include "launch/commands.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = zt::fuzz::split_parts(data, size, 2);
  const std::filesystem::path dir = zt::fuzz::fresh_dir() / "run";
  std::filesystem::create_directories(dir);
  zt::fuzz::write_bytes(dir / "metrics.jsonl", parts[0]);
  if (parts.size() == 2) zt::fuzz::write_bytes(dir / "config.yaml", parts[1]);
  zt::fuzz::expect_clean([&] { zt::cmd_report({dir.string(), "-o", (dir / "report.html").string()}); });
  return 0;
}
