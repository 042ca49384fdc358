// Hugging Face config.json (core/hf_config.h) read through model.init_from, as `zt train`
// reads it. A config.json that fills the model keys must survive its own writer: the text
// hf_config_text makes of the filled model section fills the same keys again.
#include "core/config.h"
#include "core/hf_config.h"
#include "fuzz/fuzz_util.h"

namespace {

zt::Config parse_with_init_from(const std::filesystem::path& dir) {
  return zt::parse_config("model:\n  init_from: " + dir.string() + "\n", "fuzz.yaml");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path root = zt::fuzz::fresh_dir();
  const std::filesystem::path dir = root / "hf", again_dir = root / "again";
  std::filesystem::create_directories(dir);
  std::filesystem::create_directories(again_dir);
  zt::fuzz::write_bytes(dir / "config.json", {reinterpret_cast<const char*>(data), size});
  zt::fuzz::expect_clean([&] {
    (void)zt::hf_special_tokens(dir.string());
    const zt::Config c = parse_with_init_from(dir);
    const zt::HfSpecialTokens special = zt::hf_special_tokens(dir.string());
    const std::string text = zt::hf_config_text(c.model, special);
    zt::fuzz::write_bytes(again_dir / "config.json", text);
    zt::Config again;
    try {
      again = parse_with_init_from(again_dir);
    } catch (const zt::Error& e) {
      std::fprintf(stderr, "hf_config_text output does not load: %s\n%s\n", e.what(), text.c_str());
      std::abort();
    }
    again.model.init_from = c.model.init_from;
    if (!(again.model == c.model)) {
      std::fprintf(stderr, "config.json round trip changed the model section:\n%s\n", text.c_str());
      std::abort();
    }
  });
  return 0;
}
