#pragma once
// rate_limit.sync: batched (issue 14), the I/O: one per worker. Decides requests from the
// worker's LocalCounts (ratelimit/local_counts.h) and settles the counts it admitted with
// Redis: a timer runs every rate_limit.sync_interval while counts are owed, and each tick
// sends every owed client's count (kSettleScript, one INCRBY per client) in one call, so one
// client is settled at most once per interval and a worker has one settlement call out.
//
// Redis trouble: a failed settlement is sent again on a later tick; a count whose window ends
// first is dropped (debug log, cachecar_rate_limit_counts_dropped_total). Requests the worker
// cannot decide locally go the exact path and meet rate_limit.on_redis_error there.
//
// Ownership: the worker owns it and calls stop() before the Redis client's, while its loop
// still runs (the timer must be closed inside the loop).

#include <uv.h>

#include <cstdint>
#include <vector>

#include "admin/metrics.h"
#include "config/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/local_counts.h"
#include "redis/redis_client.h"
#include "uv/handle.h"

namespace cachecar {

class BatchedLimiter final : private RedisWaiter {
 public:
  // Clients one worker tracks. An entry is about 200 bytes with its key, so this bounds the
  // table near 20 MB; a client beyond it is limited exactly (one Redis command per request)
  // rather than evicting a live count. Expired entries are swept once a second.
  static constexpr size_t kMaxTrackedClients = 100'000;
  // Clients per settlement call: enough to settle a busy worker in one round trip, few
  // enough that one call does not hold Redis for long. The rest go on the next tick.
  static constexpr size_t kMaxSettlementsPerCall = 512;

  // `redis` and `metrics` are borrowed and outlive this.
  BatchedLimiter(uv_loop_t* loop, RedisClient& redis, WorkerMetrics& metrics);
  ~BatchedLimiter();
  BatchedLimiter(const BatchedLimiter&) = delete;
  BatchedLimiter& operator=(const BatchedLimiter&) = delete;

  // The loop's monotonic clock, as decide() and learn() measure windows.
  int64_t now_ms() const;
  LocalVerdict decide(const LimitPlan& plan, const Config::RateLimit& config);
  // Redis's answer to a request decide() sent to Redis (AskRedis), asked at `asked_ms`.
  void learn(const LimitPlan& plan, LimitCounts counts, int64_t asked_ms);
  // Closes the timer and cancels a settlement in flight; its counts are not sent.
  void stop();

 private:
  void arm();
  void on_tick();
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void account(const CountMoves& moves);

  uv_loop_t* loop_;
  RedisClient& redis_;
  WorkerMetrics& metrics_;
  LocalCounts counts_{kMaxTrackedClients};
  UvPtr<uv_timer_t> timer_;
  uint64_t interval_ms_ = 10;  // rate_limit.sync_interval as last seen (reloads change it)
  RedisClient::Call* call_ = nullptr;
  std::vector<Settlement> sent_;  // what call_ settles, in command order
  int64_t sent_ms_ = 0;
  bool logged_failure_ = false;  // one warning per run of refused settlements
};

}  // namespace cachecar
