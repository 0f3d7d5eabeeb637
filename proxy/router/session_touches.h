#pragma once
// Renewing sessions for the app (issue 17, session.touch). express-session renews a session's
// expiry on every request the app answers (connect-redis: EXPIRE); a request cachecar answers
// itself (a hit, a 304) never reaches the app, so cachecar renews it instead, or a user who
// reads only cached pages would be logged out while active. Nothing waits for the answer: a
// renewal Redis misses is one the next request makes.
//
// Ownership: one per worker, destroyed before the worker's Redis client; its calls in flight
// are cancelled then.

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "admin/metrics.h"
#include "redis/redis_client.h"

namespace cachecar {

class SessionTouches final : private RedisWaiter {
 public:
  // `redis` and `metrics` are borrowed and outlive this.
  SessionTouches(RedisClient& redis, WorkerMetrics& metrics) : redis_(redis), metrics_(metrics) {}
  ~SessionTouches();
  SessionTouches(const SessionTouches&) = delete;
  SessionTouches& operator=(const SessionTouches&) = delete;

  void touch(RedisCommand command);

 private:
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;

  RedisClient& redis_;
  WorkerMetrics& metrics_;
  std::unordered_map<uint64_t, RedisClient::Call*> calls_;  // by tag
  uint64_t next_tag_ = 0;
};

}  // namespace cachecar
