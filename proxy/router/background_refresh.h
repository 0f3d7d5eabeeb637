#pragma once
// cache.mode: http, RFC 5861 stale-while-revalidate: a stale entry is served at once, and
// refreshed here, off any client's path. Once per key across the fleet: the refresh first takes
// a lease in Redis (SET lease:{key} NX PX, for as long as an upstream exchange may take), so of
// ten replicas serving the same stale entry one asks the origin. It asks conditionally when the
// entry has a validator (a 304 refreshes the stored headers and keeps the body), and stores the
// answer as a miss's fill would: guarded by the guard the lookup saw, so a write meanwhile wins.
//
// Ownership: the worker owns its BackgroundRefreshes; each refresh borrows an upstream
// connection while attached and a Redis call while one is out, and gives both back when it
// ends or is stopped. A finished refresh is destroyed later, never under its own callback.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/envelope.h"
#include "cache/http_semantics.h"
#include "cache/plan.h"
#include "http/message.h"
#include "router/worker_context.h"

namespace cachecar {

class BackgroundRefresh;

class BackgroundRefreshes {
 public:
  // Requires: `context` outlives this.
  explicit BackgroundRefreshes(WorkerContext& context);
  ~BackgroundRefreshes();
  BackgroundRefreshes(const BackgroundRefreshes&) = delete;
  BackgroundRefreshes& operator=(const BackgroundRefreshes&) = delete;

  // Refreshes `entry`, found stale by `verdict` at `lookup_key` for `plan` (made under
  // `config`) and `request` (as the client sent it, from `client_address`; `vary_request` its
  // fields as forwarded, which select a Vary variant), unless this worker is already
  // refreshing that key. `seen_guard` and `epoch` are the lookup's; `user` is the session's
  // user the request would have named upstream (router/session_stage.h), so that a user's
  // entry is refreshed as that user.
  void start(std::shared_ptr<const Config> config, const RequestPlan& plan,
             const std::string& lookup_key, const RequestHead& request, const Headers& vary_request,
             std::string_view client_address, const CachedView& entry, const HttpVerdict& verdict,
             std::string seen_guard, uint64_t epoch, const std::optional<std::string>& user);
  // Ends every refresh (the worker stops).
  void stop();
  size_t running() const { return running_.size(); }

 private:
  friend class BackgroundRefresh;
  void finished(BackgroundRefresh& refresh);

  WorkerContext& context_;
  std::unordered_map<std::string, std::unique_ptr<BackgroundRefresh>> running_;
  std::vector<std::unique_ptr<BackgroundRefresh>> finished_;  // destroyed at the next start()
};

}  // namespace cachecar
