#pragma once
// A Redis command as data, before any socket is involved: what the cache and the limiter
// build (pure) and the client sends.

#include <string>
#include <vector>

namespace cachecar {

struct RedisScript {
  std::string name;    // for logs
  std::string source;  // Lua
};

struct RedisCommand {
  // Plain command: the full argv. Script call: the keys then the arguments.
  std::vector<std::string> args;
  const RedisScript* script = nullptr;  // registered with the client; outlives it
  int num_keys = 0;
};

}  // namespace cachecar
