#pragma once
// The cache's Redis writes: conditional fill and invalidation (the lookup is a stage of the
// request's batch: cache/lookup.h). One per worker, on the
// worker's RedisClient. Lookups and invalidations report to their asker; fills are fire and
// forget (a client never waits for one), their failures logged here.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cache/plan.h"
#include "redis/redis_client.h"

namespace cachecar {

struct CacheStats {
  uint64_t fills = 0;          // stored
  uint64_t fills_refused = 0;  // the guard moved: an invalidation won the race
  uint64_t fill_errors = 0;    // Redis said no (READONLY, OOM, ...) or did not answer
  uint64_t invalidations = 0;
};

class CacheStore final : private RedisWaiter {
 public:
  explicit CacheStore(RedisClient& redis);

  // Registers the scripts; call before the client starts.
  static void register_scripts(RedisClient& redis);

  bool available() const { return redis_.ready(); }
  RedisClient& redis() { return redis_; }

  // Stores `value` if the guard still holds `seen_guard`.
  void fill(const RequestPlan& plan, const std::string& seen_guard, std::string value,
            Duration ttl);

  // Deletes the plan's invalidate_keys and moves their guards; `waiter` hears when it is done.
  RedisClient::Call* invalidate(const RequestPlan& plan, RedisWaiter& waiter, uint64_t tag);

  const CacheStats& stats() const { return stats_; }
  // Redis refused the last fill it answered (OOM under noeviction, READONLY after a failover):
  // new misses are told BYPASS, since their answer will most likely not be stored either.
  // Fills are still attempted, and the first one Redis runs clears it.
  bool fills_failing() const { return fills_failing_; }

 private:
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;

  RedisClient& redis_;
  std::string token_prefix_;  // random per process, so guard tokens are unique fleet-wide
  uint64_t token_counter_ = 0;
  CacheStats stats_;
  bool fills_failing_ = false;
};

}  // namespace cachecar
