#pragma once
// What cachecar will do with one request, decided from the request head and the
// configuration alone (pure): which route it belongs to, whether the cache is looked up,
// which keys a successful write invalidates, or why the cache is bypassed.

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/message.h"

namespace cachecar {

enum class CacheAction {
  Bypass,      // forwarded, not looked up, not stored ("X-Cache: BYPASS")
  Lookup,      // GET/HEAD on a cacheable route: look up, else fetch and fill
  Invalidate,  // a write that, when answered 2xx, deletes `invalidate_keys`
};

struct RequestPlan {
  CacheAction action = CacheAction::Bypass;
  const RouteConfig* route = nullptr;  // null when no route matched; points into the Config
  std::string key;                     // Lookup: the cache key
  std::string guard_key;               // Lookup: its invalidation guard (the route key's)
  std::string variants_key;            // Lookup of a query variant: the route key's variant set
  std::string epoch_key;               // the cache epoch, bumped when writes cannot name keys
  std::string epoch_read_key;          // Lookup: the epoch as read with the guard (cache/key.h)
  std::string epoch_stamp_key;         // Lookup with format: body: the entry's epoch
  Duration ttl{0};  // mode http: the longest an entry may stay (cache.max_ttl)
  // cache.mode: http. Lookup: the stored response's own headers say whether it may be served,
  // and the origin's answer how long it is kept (cache/http_semantics.h). Invalidate: a 3xx
  // answer invalidates too, and so do its Location and Content-Location.
  bool http_semantics = false;
  // Lookup of a GET with one byte range (mode http): a hit is cut to it (206, or 416); a miss
  // fetches the whole response, to store it.
  bool byte_range = false;
  std::vector<std::string> invalidate_keys;      // Invalidate: cache keys
  std::vector<std::string> invalidate_guards;    // Invalidate: their guards, in the same order
  std::vector<std::string> invalidate_variants;  // Invalidate: their variant sets, same order
  std::vector<std::string> invalidate_fences;    // Invalidate: their fence sets, same order
  std::string_view reason;                       // Bypass: why, for debug logs
  // Lookup on a route: the target the upstream gets when it differs from the client's, with
  // only the keyed query parameters. An answer that is stored must depend on nothing the key
  // leaves out, or one client's "?lang=evil" is served to everyone (cache poisoning).
  std::string upstream_target;
};

// cache.mode: http, RFC 9111 §4.4: a write answered 2xx or 3xx also invalidates the URIs its
// answer names in Location and Content-Location, when they are on the request's own host: their
// keys (and theirs to invalidate) join `plan`'s. Nothing in mode routes. Requires:
// plan.action == CacheAction::Invalidate.
void add_response_invalidations(const ResponseHead& response, const RequestHead& request,
                                const Config& config, RequestPlan& plan);

// cache.mode: http: the lookup (and fill) of the Vary variant of `plan`'s key that a request
// whose selector has `digest` (cache/vary.h) selects: keyed in the key's slot, guarded by its
// guard, listed in its variant set so that whatever invalidates the key deletes it.
RequestPlan vary_variant_plan(const RequestPlan& plan, std::string_view digest,
                              std::string_view key_prefix);

// A route with per_user: true, for a request whose session names `user`: the entry kept for
// that user alone (cache/key.h: user_variant_key, by the user's digest, so no user's name
// is in a key), listed in the key's variant set so that whatever invalidates the key deletes
// every user's entry too.
RequestPlan per_user_plan(const RequestPlan& plan, std::string_view user,
                          std::string_view key_prefix);

// Requires: `config` outlives the plan (route points into it).
RequestPlan plan_request(const RequestHead& head, const Config& config);
// The same, written into `plan`. Requires: `plan` is as default-constructed. The exchange plans
// into its own member: no temporary to move and destroy on every request.
void plan_request(const RequestHead& head, const Config& config, RequestPlan& plan);

}  // namespace cachecar
