#pragma once
// The rate-limit stage: counts the request in Redis (one script call in the request's batch)
// and turns the count into RateLimit-* lines, a 429, or, when Redis cannot say, the
// configured failure mode (allow without headers, or 503).
//
// With rate_limit.sync: batched the worker's BatchedLimiter may decide first, from its own
// counts: such a request adds no command to the batch (a near-cache hit then costs Redis
// nothing), and its verdict stands whatever the batch's fate, even with Redis down.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "admin/metrics.h"
#include "config/config.h"
#include "net/ip.h"
#include "ratelimit/limiter.h"
#include "ratelimit/local_counts.h"
#include "router/stage.h"

namespace cachecar {

class BatchedLimiter;

class RateLimitStage final : private BatchedStage {
 public:
  // Plans the count; none is made when limiting is off for this route or client. `user` is
  // the user of the request's valid session (null: none), for counters keyed by it. `batched`
  // (borrowed; outlives the stage) is consulted when config says rate_limit.sync: batched.
  void begin(const Config& config, const RouteConfig* route, const IpAddress& client,
             int64_t now_ms, BatchedLimiter* batched = nullptr, const std::string* user = nullptr);
  void add_commands(RedisBatch& batch);
  // Decides from this stage's replies in `batch_replies` (empty: Redis was not asked or did
  // not answer). Requires: the config given to begin().
  std::optional<Refusal> finish(const std::vector<RedisReplyPtr>& batch_replies,
                                const Config& config, WorkerMetrics& metrics);
  // The RateLimit-* lines every response of this request carries; empty when unlimited (or
  // the limiter failed open).
  std::string_view header_lines() const { return header_lines_.view(); }
  bool limited() const { return plan_.has_value(); }

 private:
  std::optional<LimitPlan> plan_;
  RateLimitLines header_lines_;
  BatchedLimiter* batched_ = nullptr;  // set when the request asks Redis in batched mode
  std::optional<LocalVerdict> local_;  // decided without Redis
  int64_t asked_ms_ = 0;               // the batched limiter's clock when Redis was asked
};

}  // namespace cachecar
