// The message of the zt::Error a callable throws, or "(no error)".
#pragma once
#include <functional>
#include <string>

#include "core/error.h"

namespace zt::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace zt::testing
