#pragma once
// RFC 9211 Cache-Status: what cachecar did for a request, in the standard field next to
// X-Cache. Pure: the facts in, the field value out.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

struct CacheStatusReport {
  bool hit = false;            // answered from the cache without forwarding
  std::string_view fwd;        // why it was forwarded: uri-miss, stale, request, bypass, ...
  int fwd_status = 0;          // the upstream's status; 0: none came
  std::optional<int64_t> ttl;  // seconds of freshness left (negative when stale)
  bool stored = false;         // the forwarded answer is being stored
  bool collapsed = false;      // answered from another request's forward
  std::string_view key;        // sent when not empty
  std::string_view detail;     // sent when not empty, e.g. stale-if-error
};

// "cachecar; hit; ttl=12" or "cachecar; fwd=uri-miss; fwd-status=200; stored"...
std::string cache_status_value(const CacheStatusReport& report);

}  // namespace cachecar
