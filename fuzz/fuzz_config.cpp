// YAML experiment configs and --set overrides. Input: the YAML text, then after a NUL byte
// one override ("a.b=value") per line. A config that parses must survive its own dump:
// parse_config(dump_config(c)) == c.
#include <string>

#include "core/config.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = zt::fuzz::split_parts(data, size, 2);
  std::vector<std::string> overrides;
  if (parts.size() == 2) {
    std::string_view rest = parts[1];
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }
  zt::fuzz::expect_clean([&] {
    const zt::Config c = zt::parse_config(std::string(parts[0]), "fuzz.yaml", overrides);
    const std::string dumped = zt::dump_config(c);
    zt::Config again;
    try {
      again = zt::parse_config(dumped, "dumped.yaml");
    } catch (const zt::Error& e) {
      std::fprintf(stderr, "dump_config output does not parse: %s\n%s\n", e.what(), dumped.c_str());
      std::abort();
    }
    if (!(again == c)) {
      std::fprintf(stderr, "dump_config round trip changed the config:\n%s\n", dumped.c_str());
      std::abort();
    }
  });
  return 0;
}
