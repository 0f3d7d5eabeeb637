#pragma once
// Keeps a worker's near cache (cache/near_cache.h) coherent with Redis, by Redis's
// server-assisted client-side caching in its RESP2 form (hiredis 0.14 speaks no RESP3): one
// TrackingLink per Redis server the worker reads from (the one Redis, or each primary of a
// Redis Cluster, as the cluster client adds and drops them).
//
// BCAST with the prefixes of the keys lookups read (cache/key.h: tracked_prefixes), so Redis
// announces every change of such a key, whoever makes it, with no per-read bookkeeping on
// either side. Each message names keys (dropped from the near cache); a null one (FLUSHALL,
// FLUSHDB) or one naming the cache epoch empties it. A fill is announced too, to this worker
// as well: its message may drop the copy the next hit just kept, which costs that key one
// more Redis read, never a stale answer.
//
// The near cache is usable only while every link tracks. A link that loses a connection, or
// leaves with its server (a primary replaced or removed), empties it; a Redis that refuses any
// command of the protocol (some managed services do) is logged once and the near cache stays
// off.
//
// With tracking: off nothing of this runs: entries live until max_ttl, the operator's choice.
//
// Ownership: the worker owns it; stop() before the Redis client's, while the loop runs.

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/near_cache.h"
#include "cache/tracking_link.h"
#include "config/config.h"
#include "redis/redis_client.h"
#include "uv/handle.h"

namespace cachecar {

class NearTracking final : private TrackingLink::Listener {
 public:
  enum class State {
    Untracked,  // tracking: off; the near cache is always usable
    Waiting,    // a connection is missing, or tracking is not confirmed yet
    Tracking,   // Redis announces every change: the near cache is usable
    Refused,    // Redis refused tracking: the near cache stays off
  };

  // `redis` is the worker's client, whose connections' reads are the ones tracked. Requires:
  // before redis.start().
  NearTracking(uv_loop_t* loop, RedisClient& redis, const Config& config);
  ~NearTracking();
  NearTracking(const NearTracking&) = delete;
  NearTracking& operator=(const NearTracking&) = delete;

  void start();
  void stop();
  // A reload: sizes apply at once. Routes whose keys need other prefixes are tracked anew
  // (the near cache is emptied and unused until Redis confirms), since Redis would announce
  // nothing about a key outside the prefixes it was given.
  void apply(const Config& config);

  // The near cache when it may be read and filled, else nullptr.
  NearCache* usable() {
    return state_ == State::Tracking || state_ == State::Untracked ? &cache_ : nullptr;
  }
  // The near cache whatever the state, for dropping entries.
  NearCache& cache() { return cache_; }
  State state() const { return state_; }

 private:
  void on_link_tracking(TrackingLink& link) override;
  void on_link_lost(TrackingLink& link, const char* why) override;
  void on_link_refused(TrackingLink& link, std::string_view command,
                       std::string_view answer) override;
  void on_link_message(const redisReply& keys) override;
  void add_link(RedisNode& data);
  void remove_link(RedisNode& data);
  // Waiting or Tracking, from the links; empties the near cache when no longer Tracking.
  void update_state(const char* why);
  void ping();

  uv_loop_t* loop_;
  std::vector<std::string> prefixes_;
  std::string epoch_key_;
  NearCache cache_;
  State state_;
  std::map<RedisNode*, std::unique_ptr<TrackingLink>> links_;  // by data connection
  UvPtr<uv_timer_t> ping_timer_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace cachecar
