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

#include "cache/plan.h"
#include "config/config.h"
#include "http/message.h"

namespace cachecar {

struct StoreDecision {
  bool store = false;
  Duration ttl{0};
  std::string_view reason;  // why not, for debug logs; "" when storing
  int64_t initial_age = 0;  // cache.mode: http: seconds old on arrival (cache/http_semantics.h)
};

StoreDecision decide_storage(const ResponseHead& head, const RouteConfig* route, Duration ttl,
                             const Config::Cache& cache);

// The decision for a lookup's `plan`, in either cache mode: the route's rules above, or RFC
// 9111's with `request` as the client sent it and the exchange's Unix times in seconds.
StoreDecision decide_storage(const ResponseHead& head, const RequestPlan& plan,
                             const Headers& request, const Config::Cache& cache,
                             int64_t request_time, int64_t response_time);

}  // namespace cachecar
