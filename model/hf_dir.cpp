#include "model/hf_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/hf_io.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

nlohmann::json read_json(const fs::path& path) {
  try {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) fail("cannot write {}", path.string());
}

std::string shard_name(size_t k, size_t n) { return fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, n); }

}  // namespace

HfWeightFiles HfWeightFiles::open(const std::string& path) {
  HfWeightFiles w;
  w.path_ = path;
  const fs::path dir(path);
  auto add_file = [&](const fs::path& file) {
    w.files_.push_back(SafetensorsFile::open(file.string()));
    for (const std::string& name : w.files_.back().names()) {
      w.shard_of_[name] = w.files_.size() - 1;
      w.names_.push_back(name);
    }
  };
  if (!fs::is_directory(dir)) {
    add_file(dir);
    return w;
  }
  if (fs::is_regular_file(dir / kSingleFile)) {
    add_file(dir / kSingleFile);
    return w;
  }
  const fs::path index = dir / kIndexFile;
  if (!fs::is_regular_file(index))
    fail("{}: no {} or {} in this directory{}", path, kSingleFile, kIndexFile,
         fs::exists(dir / "pytorch_model.bin") || fs::exists(dir / "pytorch_model.bin.index.json")
             ? " (pytorch_model.bin is not read: save the model with safetensors)"
             : "");
  const nlohmann::json j = read_json(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object() || j["weight_map"].empty())
    fail("{}: expected a non-empty \"weight_map\" of tensor name -> shard file", index.string());
  // Each shard once; each tensor must be in the shard the index names, and only there.
  std::map<std::string, size_t> shard_index;
  std::vector<std::vector<std::string>> mapped;
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) fail("{}: weight_map['{}'] is {}, expected a file name", index.string(), name, shard.dump());
    const std::string file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      fail("{}: weight_map['{}'] names '{}', expected a file in this directory", index.string(), name, file);
    auto [it, fresh] = shard_index.emplace(file, mapped.size());
    if (fresh) mapped.emplace_back();
    mapped[it->second].push_back(name);
  }
  std::vector<std::string> order(mapped.size());
  for (const auto& [file, k] : shard_index) order[k] = file;
  for (size_t k = 0; k < order.size(); ++k) {
    const fs::path shard = dir / order[k];
    if (!fs::is_regular_file(shard))
      fail("{}: shard {} not found ({} names it for {} tensors, '{}' first)", path, order[k], kIndexFile,
           mapped[k].size(), mapped[k].front());
    SafetensorsFile f = SafetensorsFile::open(shard.string());
    for (const std::string& name : mapped[k])
      if (!f.contains(name))
        fail("{}: tensor '{}' is not in {}, where {} puts it", path, name, order[k], kIndexFile);
    for (const std::string& name : f.names())
      if (std::find(mapped[k].begin(), mapped[k].end(), name) == mapped[k].end())
        fail("{}: {} holds tensor '{}', which {} does not list there", path, order[k], name, kIndexFile);
    w.files_.push_back(std::move(f));
    for (const std::string& name : w.files_.back().names()) {
      w.shard_of_[name] = k;
      w.names_.push_back(name);
    }
  }
  return w;
}

const SafetensorsFile& HfWeightFiles::file_of(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) fail("{}: no tensor named '{}'", path_, name);
  return files_[it->second];
}

int64_t parse_shard_size(const std::string& text) {
  std::string unit;
  int64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  for (const char* q = p; q < end; ++q) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(*q)));
  const std::pair<const char*, int64_t> units[] = {{"", 1},          {"B", 1},           {"KB", 1000},
                                                   {"MB", 1000000},  {"GB", 1000000000}, {"KIB", 1 << 10},
                                                   {"MIB", 1 << 20}, {"GIB", 1 << 30}};
  if (ec == std::errc() && p != text.data() && n > 0)
    for (auto [name, scale] : units)
      if (unit == name && n <= INT64_MAX / scale) return n * scale;
  fail("--max-shard-size: expected a positive size like 500MB, 5GB or 2GiB, got '{}'", text);
}

std::vector<std::vector<size_t>> plan_shards(const std::vector<int64_t>& bytes, int64_t max_bytes) {
  std::vector<std::vector<size_t>> shards;
  int64_t current = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (shards.empty() || (!shards.back().empty() && current + bytes[i] > max_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += bytes[i];
  }
  return shards;
}

void write_hf_directory(const Transformer& model, const std::string& dir, const std::string& config_json,
                        const std::vector<std::pair<std::string, std::string>>& copies, int64_t max_shard_bytes,
                        const std::vector<std::pair<std::string, std::string>>& texts) {
  fs::path out = fs::path(dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "x/" -> "x"
  if (out.empty() || out.filename() == "." || out.filename() == "..")
    fail("zt export: -o {}: name the directory to create", dir);
  if (fs::exists(out) && (!fs::is_directory(out) || !fs::is_empty(out)))
    fail("zt export: {} exists and is {}; name a new or empty directory", out.string(),
         fs::is_directory(out) ? "not empty" : "not a directory");
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  // Missing parents are created like transformers' save_pretrained does, and removed on error.
  fs::path first_created;
  for (fs::path p = parent; !p.empty() && !fs::exists(p); p = p.parent_path()) first_created = p;
  std::error_code ec;
  if (!first_created.empty() && !fs::create_directories(parent, ec))
    fail("zt export: cannot create {}: {}", parent.string(), ec.message());
  const fs::path tmp = parent / fmt::format(".{}.tmp-{}", out.filename().string(), getpid());
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec) {
    if (!first_created.empty()) fs::remove_all(first_created, ec);
    fail("zt export: cannot create {}: {}", tmp.string(), ec.message());
  }
  try {
    write_text(tmp / "config.json", config_json);
    const std::vector<NamedTensor> tensors = to_hf_tensors(model);
    std::vector<int64_t> bytes;
    for (const NamedTensor& t : tensors) bytes.push_back(static_cast<int64_t>(t.tensor.nbytes()));
    const std::map<std::string, std::string> meta = {
        {"format", "pt"}, {"zerotrain.family", std::string(family_name(model.spec().family))}};
    const auto shards = plan_shards(bytes, max_shard_bytes);
    if (shards.size() == 1) {
      write_safetensors((tmp / kSingleFile).string(), tensors, meta);
    } else {
      nlohmann::ordered_json index;
      int64_t total = 0;
      std::map<std::string, std::string> weight_map;  // sorted by name, as transformers writes it
      for (size_t k = 0; k < shards.size(); ++k) {
        std::vector<NamedTensor> part;
        for (size_t i : shards[k]) {
          part.push_back(tensors[i]);
          weight_map[tensors[i].name] = shard_name(k, shards.size());
          total += bytes[i];
        }
        write_safetensors((tmp / shard_name(k, shards.size())).string(), part, meta);
      }
      index["metadata"] = {{"total_size", total}};
      index["weight_map"] = weight_map;
      write_text(tmp / kIndexFile, index.dump(2) + "\n");
    }
    for (const auto& [source, name] : copies) {
      fs::copy_file(source, tmp / name, ec);
      if (ec) fail("zt export: cannot copy {} to {}: {}", source, (out / name).string(), ec.message());
    }
    for (const auto& [name, content] : texts) write_text(tmp / name, content);
    // rename() replaces an empty directory, so an existing empty `out` is fine too.
    fs::rename(tmp, out, ec);
    if (ec) fail("zt export: cannot move {} to {}: {}", tmp.string(), out.string(), ec.message());
  } catch (...) {
    fs::remove_all(first_created.empty() ? tmp : first_created, ec);
    throw;
  }
}

}  // namespace zt
