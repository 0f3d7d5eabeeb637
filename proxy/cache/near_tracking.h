#pragma once
// Keeps a worker's near cache (cache/near_cache.h) coherent with Redis, by Redis's
// server-assisted client-side caching in its RESP2 form (hiredis 0.14 speaks no RESP3):
//
//   invalidation connection:  CLIENT ID → n;  SUBSCRIBE __redis__:invalidate;  PING each second
//   data connection (the worker's own):  CLIENT TRACKING on REDIRECT n BCAST PREFIX p ...
//
// BCAST with the prefixes of the keys lookups read (cache/key.h: tracked_prefixes), so Redis
// announces every change of such a key, whoever makes it, with no per-read bookkeeping on
// either side. Each message names keys (dropped from the near cache); a null one (FLUSHALL,
// FLUSHDB) or one naming the cache epoch empties it. A fill is announced too, to this worker
// as well: its message may drop the copy the next hit just kept, which costs that key one
// more Redis read, never a stale answer.
//
// The near cache is usable only while both halves stand. Redis forgets tracking with the data
// connection and tells nobody; a redirect to a connection that is gone loses messages in
// silence. So losing either connection empties the near cache, and tracking is turned on
// again, on the new data connection or for the new invalidation client, before it is used
// again. A Redis that refuses any of these commands (some managed services do) is logged once
// and the near cache stays off.
//
// With tracking: off nothing of this runs: entries live until max_ttl, the operator's choice.
//
// Ownership: the worker owns it, with the data connection it borrows; stop() before the loop
// ends.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cache/near_cache.h"
#include "config/config.h"
#include "redis/redis_client.h"
#include "uv/handle.h"

namespace cachecar {

class NearTracking final : private RedisWaiter {
 public:
  enum class State {
    Untracked,  // tracking: off; the near cache is always usable
    Waiting,    // a connection is missing, or tracking is not confirmed yet
    Tracking,   // Redis announces every change: the near cache is usable
    Refused,    // Redis refused tracking: the near cache stays off
  };

  // `data` is the worker's connection, whose reads are the ones tracked.
  NearTracking(uv_loop_t* loop, RedisClient& data, RedisSettings settings, const Config& config);
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
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void on_subscribed(std::vector<RedisReplyPtr>& replies);
  void on_tracking_answer(std::vector<RedisReplyPtr>& replies, uint64_t client_id);
  void on_message(const redisReply& message);
  void enable_tracking();
  void lose(const char* why);
  void refuse(std::string_view command, std::string_view answer);
  void ping();

  RedisClient& data_;  // borrowed; outlives this
  RedisClient invalidations_;
  std::vector<std::string> prefixes_;
  std::string epoch_key_;
  NearCache cache_;
  State state_;
  int64_t client_id_ = 0;  // the invalidation connection's, once subscribed
  UvPtr<uv_timer_t> ping_timer_;
  bool stopped_ = false;
};

}  // namespace cachecar
