#pragma once
// Reading the configuration file with the process environment applied: what --config,
// --check-config and a SIGHUP reload all do, so all three report errors the same way.

#include <memory>
#include <string>

#include "config/config.h"

namespace cachecar {

// nullptr on failure, with `error` set to "invalid configuration: FILE:LINE: KEY: REASON" or
// "cannot read FILE".
std::shared_ptr<const Config> load_config_file(const std::string& path, std::string& error);

}  // namespace cachecar
