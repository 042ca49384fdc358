// Tokenizer vocab files (core/data/tokenizer.h). A vocab that loads must round-trip every
// id it has through decode and encode.
#include <numeric>

#include "core/data/tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path path = zt::fuzz::fresh_dir() / "vocab.json";
  zt::fuzz::write_bytes(path, {reinterpret_cast<const char*>(data), size});
  zt::fuzz::expect_clean([&] {
    const auto tok = zt::load_tokenizer(path.string());
    const int64_t n = tok->vocab_size();
    if (n <= 0 || n > 256) std::abort();
    std::vector<uint32_t> ids(static_cast<size_t>(n));
    std::iota(ids.begin(), ids.end(), 0u);
    const std::string text = tok->decode(ids);
    if (tok->encode(text) != ids) std::abort();
  });
  return 0;
}
