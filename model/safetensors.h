// safetensors files: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, offsets
// relative to the end of the header), then the tensor bytes. Read through a memory map.
#pragma once
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace zt {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Writes path.tmp, fsyncs and renames: a failed write never leaves a partial file at path.
void write_safetensors(const std::string& path, std::span<const NamedTensor> tensors,
                       const std::map<std::string, std::string>& metadata = {});

class SafetensorsFile {
 public:
  // Validates the header: JSON, dtypes, shapes against byte ranges, bounds and overlaps.
  static SafetensorsFile open(const std::string& path);
  SafetensorsFile(SafetensorsFile&& o) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& o) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // in file order
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  DType dtype(const std::string& name) const { return entry(name).dtype; }
  const Shape& shape(const std::string& name) const { return entry(name).shape; }
  // A view into the mapping, valid while this object lives; a copy when the mapped bytes are
  // not aligned for the dtype.
  Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    int64_t begin, end;
  };
  SafetensorsFile() = default;
  const Entry& entry(const std::string& name) const;

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const char* data_ = nullptr;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace zt
