// `zt trace merge`: per-rank Chrome traces checked to belong together and concatenated.
// Input: up to four rank-NNNNN.trace.json files, separated by NUL bytes.
#include <fmt/format.h>

#include "launch/commands.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = zt::fuzz::split_parts(data, size, 4);
  const std::filesystem::path dir = zt::fuzz::fresh_dir() / "trace";
  std::filesystem::create_directories(dir);
  for (size_t r = 0; r < parts.size(); ++r) zt::fuzz::write_bytes(dir / fmt::format("rank-{:05d}.trace.json", r), parts[r]);
  zt::fuzz::expect_clean([&] { zt::cmd_trace({"merge", dir.string(), "-o", (dir / "merged.json").string()}); });
  return 0;
}
