#pragma once
// Helpers several unit tests share: a configuration from YAML that must be valid, and a Redis
// reply from its RESP bytes, both failing the test with the reason when they cannot be made.

#include <doctest/doctest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "cache/plan.h"
#include "config/config.h"
#include "redis/reply.h"

namespace cachecar {

// Parses `yaml` with an empty environment.
inline Config parse_ok(std::string_view yaml) {
  auto result = parse_config(
      yaml, [](std::string_view) -> std::optional<std::string> { return std::nullopt; });
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    FAIL("unexpected error: ", error->describe("test.yaml"), "\n--- yaml ---\n", std::string(yaml));
  }
  return std::get<Config>(std::move(result));
}

// The plan for `method target`, which must be `action`.
inline RequestPlan plan_for(const Config& config, std::string_view method, std::string_view target,
                            CacheAction action) {
  RequestHead head;
  head.method = std::string(method);
  head.target = std::string(target);
  RequestPlan plan = plan_request(head, config);
  REQUIRE(plan.action == action);
  return plan;
}

// Header fields in the order given (a name may repeat).
inline Headers headers_of(std::initializer_list<std::pair<std::string, std::string>> fields) {
  Headers headers;
  for (const auto& [name, value] : fields) {
    headers.add(name, value);
  }
  return headers;
}

// One whole reply from its RESP bytes.
inline RedisReplyPtr reply_of(std::string_view bytes) {
  RespReader reader;
  REQUIRE(reader.feed(bytes));
  std::optional<RedisReplyPtr> reply = reader.next();
  REQUIRE_MESSAGE(reply.has_value(), reader.error());
  REQUIRE(*reply != nullptr);
  return std::move(*reply);
}

}  // namespace cachecar
