#pragma once
// Cache-Control (RFC 9111 §5.2) as values, for the HTTP cache mode of issue 16, and the
// targeted fields of RFC 9213 that a CDN-like cache obeys before it: CDN-Cache-Control and
// cachecar's own Cachecar-Cache-Control. Pure: header values in, directives out.
//
// Parsing is lenient where the RFC asks caches to be (§4.2.1, §5.2): names are
// case-insensitive, repeated fields are one list, an argument may be quoted, and a directive
// seen twice keeps its first value. Delta-seconds too large to represent are 2^31 (§1.2.2);
// a malformed max-age (or s-maxage) means "stale", 0.

#include <cstdint>
#include <optional>
#include <string_view>

#include "http/message.h"

namespace cachecar {

// RFC 9111 §1.2.2.
inline constexpr int64_t kDeltaSecondsCap = int64_t{1} << 31;

// Response directives (§5.2.2) and RFC 5861's stale-while-revalidate and stale-if-error.
struct ResponseCacheControl {
  bool no_store = false;
  bool no_cache = false;  // with or without field names: both forbid serving unvalidated
  bool is_private = false;
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool no_transform = false;
  std::optional<int64_t> max_age;
  std::optional<int64_t> s_maxage;
  std::optional<int64_t> stale_while_revalidate;
  std::optional<int64_t> stale_if_error;
};

// Request directives (§5.2.1).
struct RequestCacheControl {
  bool no_cache = false;
  bool no_store = false;
  bool only_if_cached = false;
  bool no_transform = false;
  std::optional<int64_t> max_age;
  std::optional<int64_t> min_fresh;
  // max-stale: a bound, or any staleness when it has no argument.
  std::optional<int64_t> max_stale;
  bool max_stale_any = false;
};

// The directives of every `field` line of `headers` (Cache-Control by default).
ResponseCacheControl parse_response_cache_control(const Headers& headers,
                                                  std::string_view field = "Cache-Control");
RequestCacheControl parse_request_cache_control(const Headers& headers);

// Which field governs a response's caching here (RFC 9213 §2.1): the most specific targeted
// field present and valid, Cachecar-Cache-Control then CDN-Cache-Control, replaces
// Cache-Control whole; without either, Cache-Control. A targeted field is a Structured
// Dictionary (RFC 8941): one that is empty or does not parse is ignored, and a directive of
// the wrong type (max-age="60") is not taken.
std::string_view governing_cache_control_field(const Headers& headers);
ResponseCacheControl effective_response_cache_control(const Headers& headers);

}  // namespace cachecar
