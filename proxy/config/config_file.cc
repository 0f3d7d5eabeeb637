#include "config/config_file.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cachecar {
namespace {

std::optional<std::string> getenv_lookup(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) {
    return std::nullopt;
  }
  return std::string(value);
}

}  // namespace

std::shared_ptr<const Config> load_config_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return nullptr;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parse_config(text.str(), getenv_lookup);
  if (auto* failure = std::get_if<ConfigError>(&parsed)) {
    error = "invalid configuration: " + failure->describe(path);
    return nullptr;
  }
  return std::make_shared<const Config>(std::move(std::get<Config>(parsed)));
}

}  // namespace cachecar
