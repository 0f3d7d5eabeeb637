#pragma once
// Whether an upstream response may be stored and shared, and for how long. Pure: a response
// head and the route's settings in, a decision with its reason out.
//
// Only what is safe to share is stored (design.md): a status in cache.statuses, no Set-Cookie,
// no Cache-Control private or no-store, no Vary that the key does not cover, not larger than
// cache.max_object_size. With cache.respect_cache_control the upstream may also shorten the TTL
// (s-maxage, then max-age) or forbid storing (no-cache, max-age=0), as RFC 9111 §5.2.2 has a
// shared cache do.

#include <string_view>

#include "config/config.h"
#include "http/message.h"

namespace cachecar {

struct StoreDecision {
  bool store = false;
  Duration ttl{0};
  std::string_view reason;  // why not, for debug logs; "" when storing
};

StoreDecision decide_storage(const ResponseHead& head, const RouteConfig* route, Duration ttl,
                             const Config::Cache& cache);

}  // namespace cachecar
