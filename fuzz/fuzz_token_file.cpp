// Token files (core/data/token_file.h): header, size and the id scans; a file that opens is
// read in full and cut into a dataset as training does.
#include <algorithm>
#include <memory>

#include "core/data/dataset.h"
#include "core/data/token_file.h"
#include "core/tensor.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path path = zt::fuzz::fresh_dir() / "tokens.bin";
  zt::fuzz::write_bytes(path, {reinterpret_cast<const char*>(data), size});
  zt::fuzz::expect_clean([&] {
    auto file = std::make_shared<const zt::TokenFile>(zt::TokenFile::open(path.string()));
    const uint32_t max = file->max_token();
    uint64_t sum = 0;
    for (int64_t i = 0; i < file->size(); ++i) sum += (*file)[i];
    if (file->size() > 0 && file->first_at_least(int64_t{max} + 1) != file->size()) std::abort();
    if (file->size() > 0 && (*file)[file->first_at_least(max)] != max) std::abort();
    // A vocabulary one short of the largest id must be refused.
    if (max > 0) {
      bool refused = false;
      try {
        zt::TokenFile::open(path.string(), max);
      } catch (const zt::Error&) {
        refused = true;
      }
      if (!refused) std::abort();
    }
    const int64_t T = 1 + static_cast<int64_t>(sum % 7);
    zt::TokenDataset ds(file, 0, file->size(), T, "train");
    if (ds.num_samples() > 0) {
      std::vector<int64_t> ids = {0, ds.num_samples() - 1};
      zt::Tensor in = zt::Tensor::empty({2, T}, zt::DType::i32), tg = zt::Tensor::empty({2, T}, zt::DType::i32);
      ds.fill_batch(ids, in, tg);
    }
  });
  return 0;
}
