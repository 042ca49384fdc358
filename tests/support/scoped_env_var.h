// Sets one environment variable (nullptr: unsets it) for a scope and restores it after: the
// kernel switches read on every call (ZT_CUDA_ATTENTION, ZT_CUDA_LINEAR_OUT) in one process.
#pragma once
#include <cstdlib>
#include <optional>
#include <string>

namespace zt::testing {

class ScopedEnvVar {
 public:
  ScopedEnvVar(const char* name, const char* value) : name_(name) {
    if (const char* was = std::getenv(name)) saved_ = was;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnvVar() {
    if (saved_)
      setenv(name_.c_str(), saved_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnvVar(const ScopedEnvVar&) = delete;
  ScopedEnvVar& operator=(const ScopedEnvVar&) = delete;

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace zt::testing
