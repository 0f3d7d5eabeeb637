#pragma once
// What the cache did for one request, as one typed value: the X-Cache field, the access log's
// cache= and the cache label of cachecar_requests_total are all derived from it, so the three
// can never disagree.

#include <array>
#include <cstddef>
#include <string_view>

namespace cachecar {

enum class CacheStatus {
  Hit,        // served from Redis
  Miss,       // looked up, not found: fetched (and stored when the answer allows it)
  Bypass,     // not cacheable, or Redis unavailable
  Coalesced,  // a miss answered from another request's fetch of the same key
  None,       // no cache decision was made: the connection refused the request itself
};

inline constexpr size_t kCacheStatuses = 5;

// The label in logs and metrics.
inline constexpr std::string_view cache_status_name(CacheStatus status) {
  constexpr std::array<std::string_view, kCacheStatuses> kNames{"HIT", "MISS", "BYPASS",
                                                                "COALESCED", "NONE"};
  return kNames[static_cast<size_t>(status)];
}

// The X-Cache value a client sees: a coalesced answer is a hit to it (it did not wait on the
// upstream for its own request). Requires: status is not None.
inline constexpr std::string_view x_cache_value(CacheStatus status) {
  return status == CacheStatus::Coalesced ? std::string_view("HIT") : cache_status_name(status);
}

}  // namespace cachecar
