// Shared by the libFuzzer harnesses: a scratch directory per process, input split into
// parts, and the rule every harness checks. A reader of outside bytes may refuse them with
// zt::Error (a message naming the file); any other exception, a crash or a sanitizer report
// is a bug. An exception other than zt::Error escapes the harness and libFuzzer records it.
#pragma once
#include <omp.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include <spdlog/spdlog.h>

namespace zt::fuzz {

// A directory of its own for this process (fuzzers run in parallel with -jobs), emptied
// before each input and removed when the process exits (libFuzzer ends a timed run with
// exit()).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* shm = "/dev/shm";
    std::filesystem::path root = std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path();
    std::filesystem::path d = root / ("zt-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  static const bool removed_at_exit = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)removed_at_exit;
  return dir;
}

inline std::filesystem::path fresh_dir() {
  const std::filesystem::path& d = scratch_dir();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(d, ec)) std::filesystem::remove_all(e.path(), ec);
  return d;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

// The input cut at each NUL byte into at most max_parts parts (the last keeps any NULs).
inline std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = all.find('\0');
    if (at == std::string_view::npos) break;
    parts.push_back(all.substr(0, at));
    all.remove_prefix(at + 1);
  }
  parts.push_back(all);
  return parts;
}

// Quiet logs and stdout, and one OpenMP thread: the harnesses run millions of small inputs,
// for which starting and joining a thread team would cost more than the parsing.
inline void setup() {
  spdlog::set_level(spdlog::level::off);
  if (!std::freopen("/dev/null", "w", stdout)) std::abort();
  omp_set_num_threads(1);
}

// Runs a reader; zt::Error is its way to refuse input.
template <class F> void expect_clean(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

}  // namespace zt::fuzz
