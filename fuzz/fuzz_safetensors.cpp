// safetensors files (model/safetensors.h) and loading them as model weights (model/hf_io.h,
// the path of model.init_from, export and generate). Every tensor of a file that opens is
// read in full; then the file is loaded into a small GPT-2 and a small Llama.
#include <memory>

#include "model/hf_io.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "fuzz/fuzz_util.h"

namespace {

zt::ModelSpec small_spec(zt::Family family) {
  zt::ModelSpec s;
  s.family = family;
  s.n_layer = 1;
  s.n_head = 2;
  s.n_kv_head = 1;
  s.d_model = 8;
  s.d_ff = 16;
  s.vocab_size = 16;
  s.max_seq_len = 8;
  s.tie_embeddings = family == zt::Family::gpt2;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto gpt2 = std::make_unique<zt::LocalModel>(small_spec(zt::Family::gpt2));
  static auto llama = std::make_unique<zt::LocalModel>(small_spec(zt::Family::llama));
  const std::filesystem::path path = zt::fuzz::fresh_dir() / "model.safetensors";
  zt::fuzz::write_bytes(path, {reinterpret_cast<const char*>(data), size});
  zt::fuzz::expect_clean([&] {
    zt::SafetensorsFile f = zt::SafetensorsFile::open(path.string());
    volatile uint8_t sink = 0;
    for (const std::string& name : f.names()) {
      zt::Tensor t = f.get(name);
      if (t.shape() != f.shape(name) || t.dtype() != f.dtype(name)) std::abort();
      const auto* p = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < t.nbytes(); ++i) sink = sink ^ p[i];
    }
  });
  zt::fuzz::expect_clean([&] { zt::load_hf_safetensors(gpt2->model, path.string()); });
  zt::fuzz::expect_clean([&] { zt::load_hf_safetensors(llama->model, path.string()); });
  return 0;
}
