// Checkpoints (parallel/checkpoint_format.h): meta.json, then the shard files it lists.
// Input: meta.json, then after a NUL byte the bytes of every shard file. A meta.json without
// "meta_crc32c" gets a correct checksum appended as write_meta does, so that the fuzzer
// reaches the structure checks instead of stopping at the checksum.
#include <memory>

#include "core/crc32c.h"
#include "model/transformer.h"
#include "parallel/checkpoint_format.h"
#include "fuzz/fuzz_util.h"

namespace {

constexpr std::string_view kCrcKey = ",\n  \"meta_crc32c\": \"";

std::string with_checksum(std::string text) {
  if (text.find("meta_crc32c") != std::string::npos || text.size() <= 2 || text.back() != '}') return text;
  text.resize(text.size() - 2);
  text += kCrcKey;
  text += zt::crc32c_hex(zt::crc32c(text.data(), text.size())) + "\"\n}\n";
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto model = [] {
    zt::ModelSpec s;
    s.n_layer = 1;
    s.d_model = 8;
    s.d_ff = 16;
    s.vocab_size = 16;
    s.max_seq_len = 8;
    return std::make_unique<zt::LocalModel>(s);
  }();
  const auto parts = zt::fuzz::split_parts(data, size, 2);
  const std::filesystem::path dir = zt::fuzz::fresh_dir() / "step-00000001";
  std::filesystem::create_directories(dir);
  zt::fuzz::write_bytes(dir / zt::kMetaFile, with_checksum(std::string(parts[0])));
  zt::fuzz::expect_clean([&] {
    const zt::CheckpointMeta meta = zt::read_meta(dir);
    if (meta.total_bytes() < 0) std::abort();  // `zt ckpt inspect` prints it
    zt::fuzz::expect_clean([&] { zt::check_same_model(meta, zt::describe_units(model->model), dir); });
    if (meta.files.size() > 16) return;
    const std::string_view shard = parts.size() == 2 ? parts[1] : std::string_view{};
    for (const zt::CkptFile& f : meta.files) zt::fuzz::write_bytes(dir / f.name, shard);
    for (const zt::CkptFile& f : meta.files) (void)zt::verify_shard(dir, f);
    zt::CheckpointReader reader(dir, meta);
    for (size_t u = 0; u < meta.units.size(); ++u) {
      const int64_t n = meta.units[u].numel;
      if (n > (int64_t{1} << 16)) continue;  // the reader's caller sizes dst from the model, not from meta.json
      std::vector<float> dst(static_cast<size_t>(n) + 3);
      for (const std::string& t : meta.tensors) reader.read(static_cast<int>(u), t, 0, n + 3, dst.data());
    }
  });
  return 0;
}
