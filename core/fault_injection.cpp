#include "core/fault_injection.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace zt {

namespace {

struct Fault {
  std::string kind;
  int64_t step = -1;
  int rank = -1;  // -1: every rank
};

Fault parse_fault() {
  Fault f;
  const char* env = std::getenv("ZT_TEST_FAULT");
  if (!env || !*env) return f;
  const char* restart = std::getenv("ZT_RESTART_COUNT");
  if (restart && std::string(restart) != "0") return f;
  const std::string s = env;
  const size_t at1 = s.find('@');
  if (at1 == std::string::npos) fail("ZT_TEST_FAULT='{}': expected KIND@STEP[@RANK]", s);
  const size_t at2 = s.find('@', at1 + 1);
  f.kind = s.substr(0, at1);
  try {
    f.step = std::stoll(s.substr(at1 + 1, at2 == std::string::npos ? std::string::npos : at2 - at1 - 1));
    if (at2 != std::string::npos) f.rank = std::stoi(s.substr(at2 + 1));
  } catch (const std::exception&) {
    fail("ZT_TEST_FAULT='{}': expected KIND@STEP[@RANK] with integer STEP and RANK", s);
  }
  return f;
}

}  // namespace

bool fault_injected(std::string_view kind, int64_t step, int rank) {
  static const Fault fault = parse_fault();
  return fault.step == step && fault.kind == kind && (fault.rank < 0 || fault.rank == rank);
}

bool poison_empty_tensors() {
  static const bool on = [] {
    const char* env = std::getenv("ZT_TEST_POISON_EMPTY");
    return env && *env && std::string(env) != "0";
  }();
  return on;
}

}  // namespace zt
