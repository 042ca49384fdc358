#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace zt {

namespace {

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::f64: return "F64";
  }
  return "?";
}

std::optional<DType> st_dtype(const std::string& s) {
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::f64})
    if (s == st_dtype_name(t)) return t;
  return std::nullopt;
}

// JSON integers only: nlohmann would cut 16.5 to 16 and wrap 2^64 - 1 to -1.
std::vector<int64_t> json_ints(const nlohmann::json& v, const char* what) {
  if (!v.is_array()) throw std::runtime_error(fmt::format("{} is {}, expected a list of integers", what, v.dump()));
  std::vector<int64_t> out;
  for (const auto& x : v) {
    if (!x.is_number_integer() || (x.is_number_unsigned() && x.get<uint64_t>() > INT64_MAX) || x.get<int64_t>() < 0)
      throw std::runtime_error(fmt::format("{} {} holds {}, expected integers >= 0", what, v.dump(), x.dump()));
    out.push_back(x.get<int64_t>());
  }
  return out;
}

}  // namespace

void write_safetensors(const std::string& path, std::span<const NamedTensor> tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    ZT_CHECK(t.tensor.device().is_cpu(), "safetensors writes host tensors");
    const auto bytes = static_cast<int64_t>(t.tensor.nbytes());
    header[t.name] = {{"dtype", st_dtype_name(t.tensor.dtype())},
                      {"shape", t.tensor.shape()},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const uint64_t n = json.size();

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot write {}: {}", tmp, std::strerror(errno));
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(json.data(), 1, n, f) == n;
  for (const NamedTensor& t : tensors)
    ok = ok && (t.tensor.nbytes() == 0 || std::fwrite(t.tensor.raw(), 1, t.tensor.nbytes(), f) == t.tensor.nbytes());
  ok = std::fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("cannot write {}: {}", path, std::strerror(errno));
  }
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail("safetensors file not found: {}", path);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  const auto size = static_cast<uint64_t>(st.st_size);
  SafetensorsFile f;
  f.path_ = path;
  if (size < 8) {
    ::close(fd);
    fail("{}: {} bytes is too short for a safetensors file", path, size);
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail("{}: mmap failed: {}", path, std::strerror(errno));
  f.map_ = map;
  f.map_bytes_ = size;

  uint64_t n = 0;
  std::memcpy(&n, map, 8);
  if (n > size - 8) fail("{}: header length {} exceeds the file size {} (truncated or not safetensors)", path, n, size);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(static_cast<const char*>(map) + 8, static_cast<const char*>(map) + 8 + n);
  } catch (const std::exception& e) {
    fail("{}: header is not valid JSON: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: header is not a JSON object", path);
  f.data_ = static_cast<const char*>(map) + 8 + n;
  const auto data_bytes = static_cast<int64_t>(size - 8 - n);

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail("{}: __metadata__ is {}, expected a map of strings", path, it->type_name());
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) f.metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const auto& v = *it;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail("{}: tensor '{}' lacks dtype, shape or data_offsets", path, it.key());
    auto dt = st_dtype(v["dtype"].is_string() ? v["dtype"].get<std::string>() : "");
    if (!dt) fail("{}: tensor '{}' has unsupported dtype {}", path, it.key(), v["dtype"].dump());
    Entry e{it.key(), *dt, {}, 0, 0};
    try {
      e.shape = json_ints(v["shape"], "shape");
      auto off = json_ints(v["data_offsets"], "data_offsets");
      if (off.size() != 2) throw std::runtime_error("data_offsets needs two entries");
      e.begin = off[0];
      e.end = off[1];
    } catch (const std::exception& ex) {
      fail("{}: tensor '{}': {}", path, it.key(), ex.what());
    }
    int64_t want = static_cast<int64_t>(dtype_size(e.dtype));
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(want, d, &want))
        fail("{}: tensor '{}' of shape {} has more bytes than a 64-bit size holds", path, e.name, shape_str(e.shape));
    if (e.end < e.begin || e.end > data_bytes)
      fail("{}: tensor '{}' byte range [{}, {}) lies outside the {} data bytes", path, e.name, e.begin, e.end, data_bytes);
    if (e.end - e.begin != want)
      fail("{}: tensor '{}' has {} bytes but {} {} needs {}", path, e.name, e.end - e.begin,
           dtype_name(e.dtype), shape_str(e.shape), want);
    f.entries_.push_back(std::move(e));
  }
  // Sort by offset to report overlaps; keep the file (header) order for names().
  std::vector<const Entry*> by_offset;
  for (const Entry& e : f.entries_) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      fail("{}: tensors '{}' and '{}' overlap", path, by_offset[i - 1]->name, by_offset[i]->name);
  std::sort(f.entries_.begin(), f.entries_.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < f.entries_.size(); ++i) f.index_[f.entries_[i].name] = i;
  return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept { *this = std::move(o); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  std::swap(path_, o.path_);
  std::swap(map_, o.map_);
  std::swap(map_bytes_, o.map_bytes_);
  std::swap(data_, o.data_);
  std::swap(entries_, o.entries_);
  std::swap(index_, o.index_);
  std::swap(metadata_, o.metadata_);
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_bytes_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: no tensor named '{}'", path_, name);
  return entries_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const Entry& e = entry(name);
  const char* p = data_ + e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) == 0) return Tensor::wrap(const_cast<char*>(p), e.shape, e.dtype);
  // A header length that is not a multiple of 8 (other writers pad less than we do) or an odd
  // offset leaves the data misaligned for its dtype; kernels load whole elements, so copy.
  Tensor t = Tensor::empty(e.shape, e.dtype, MemTag::workspace);
  std::memcpy(t.raw(), p, t.nbytes());
  return t;
}

}  // namespace zt
