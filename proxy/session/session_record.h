#pragma once
// What cachecar reads of a session that express-session stored through connect-redis: the
// JSON value of sess:<sid>, e.g. {"cookie":{"originalMaxAge":86400000,...},"passport":
// {"user":"42"}}. Parsed with nlohmann::json, never by hand. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

struct SessionRecord {
  // The value at the configured user field ("passport.user"): a string as it is, a number in
  // decimal. nullopt when absent, of another type, or holding bytes a header cannot carry.
  std::optional<std::string> user;
  // cookie.originalMaxAge in milliseconds: what express-session's touch() renews the key by.
  std::optional<int64_t> original_max_age_ms;
};

// nullopt when `json` is not a JSON object (a foreign or corrupt value: no session).
// `user_field` is a dotted path.
std::optional<SessionRecord> read_session_record(std::string_view json,
                                                 std::string_view user_field);

}  // namespace cachecar
