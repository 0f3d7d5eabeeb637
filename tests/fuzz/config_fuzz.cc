// Fuzz target: configuration files. Whatever parses must render to YAML that parses again to
// the same rendering; anything else must be a ConfigError, never a crash.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cachecar;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const EnvLookup no_env = [](std::string_view) { return std::optional<std::string>(); };
  auto parsed = parse_config(input, no_env);
  if (std::holds_alternative<ConfigError>(parsed)) {
    (void)std::get<ConfigError>(parsed).describe("fuzz.yaml");
    return 0;
  }
  const std::string rendered = render_config(std::get<Config>(parsed));
  auto again = parse_config(rendered, no_env);
  if (!std::holds_alternative<Config>(again) ||
      render_config(std::get<Config>(again)) != rendered) {
    std::abort();  // the effective configuration --check-config prints must be valid as is
  }
  return 0;
}
