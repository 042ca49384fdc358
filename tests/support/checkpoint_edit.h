// Edits a checkpoint's meta.json the way a hand edit that also fixed the checksum would, so
// tests can check that values are validated beyond the checksum.
#pragma once
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/crc32c.h"
#include "parallel/checkpoint_format.h"
#include "tests/support/run_dir.h"

namespace zt::testing {

inline void reseal_meta(const std::filesystem::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  const std::string key = ",\n  \"meta_crc32c\": \"";
  nlohmann::json j = nlohmann::json::parse(read_file(dir / kMetaFile));
  j.erase("meta_crc32c");
  edit(j);
  std::string text = j.dump(2);
  text.erase(text.rfind('\n'));  // before the closing brace
  text += key;
  text += crc32c_hex(crc32c(text.data(), text.size())) + "\"\n}\n";
  std::ofstream(dir / kMetaFile, std::ios::binary) << text;
}

}  // namespace zt::testing
