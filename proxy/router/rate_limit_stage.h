#pragma once
// The rate-limit stage: counts the request in Redis (one script call in the request's batch)
// and turns the count into RateLimit-* lines, a 429, or, when Redis cannot say, the
// configured failure mode (allow without headers, or 503).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "admin/metrics.h"
#include "config/config.h"
#include "net/ip.h"
#include "ratelimit/limiter.h"
#include "router/stage.h"

namespace cachecar {

class RateLimitStage final : private BatchedStage {
 public:
  // Plans the count; none is made when limiting is off for this route or client.
  void begin(const Config& config, const RouteConfig* route, const IpAddress& client,
             int64_t now_ms);
  void add_commands(RedisBatch& batch);
  // Decides from this stage's replies in `batch_replies` (empty: Redis was not asked or did
  // not answer). Requires: the config given to begin().
  std::optional<Refusal> finish(const std::vector<RedisReplyPtr>& batch_replies,
                                const Config& config, WorkerMetrics& metrics);
  // The RateLimit-* lines every response of this request carries; empty when unlimited (or
  // the limiter failed open).
  const std::string& header_lines() const { return header_lines_; }
  bool limited() const { return plan_.has_value(); }

 private:
  std::optional<LimitPlan> plan_;
  std::string header_lines_;
};

}  // namespace cachecar
