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
  // cache.mode: http
  Revalidated,  // a stale entry the origin confirmed with a 304, served refreshed
  Stale,        // a stale entry served because the upstream failed (stale-if-error)
  None,         // no cache decision was made: the connection refused the request itself
};

inline constexpr size_t kCacheStatuses = 7;

// The label in logs and metrics.
inline constexpr std::string_view cache_status_name(CacheStatus status) {
  constexpr std::array<std::string_view, kCacheStatuses> kNames{
      "HIT", "MISS", "BYPASS", "COALESCED", "REVALIDATED", "STALE", "NONE"};
  return kNames[static_cast<size_t>(status)];
}

// The X-Cache value a client sees: every answer whose body came from the cache is a hit to it
// (a coalesced one did not wait on the upstream for its own request). Requires: status is not
// None.
inline constexpr std::string_view x_cache_value(CacheStatus status) {
  switch (status) {
    case CacheStatus::Coalesced:
    case CacheStatus::Revalidated:
    case CacheStatus::Stale:
      return "HIT";
    default:
      return cache_status_name(status);
  }
}

}  // namespace cachecar
