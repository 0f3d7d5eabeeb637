#include "router/rate_limit_stage.h"

#include <spdlog/spdlog.h>

namespace cachecar {

void RateLimitStage::begin(const Config& config, const RouteConfig* route, const IpAddress& client,
                           int64_t now_ms) {
  plan_ = plan_rate_limit(config, route, client, now_ms);
}

void RateLimitStage::add_commands(RedisBatch& batch) {
  if (plan_) {
    add_to(batch, limiter_command(*plan_));
  }
}

std::optional<Refusal> RateLimitStage::finish(const std::vector<RedisReplyPtr>& batch_replies,
                                              const Config& config, WorkerMetrics& metrics) {
  if (!plan_) {
    return std::nullopt;
  }
  const LimitVerdict verdict = read_limit(*plan_, own_replies(batch_replies));
  if (verdict.kind == LimitVerdict::Kind::Unavailable) {
    if (!verdict.problem.empty()) {
      spdlog::warn("rate limiter: unexpected answer from Redis ({})", verdict.problem);
    }
    if (config.rate_limit.deny_on_redis_error) {
      return Refusal{503, "rate limiter unavailable", false};
    }
    plan_.reset();  // fail open: no limit, and so no RateLimit headers
    return std::nullopt;
  }
  header_lines_ = rate_limit_lines(*plan_, *verdict.decision);
  if (verdict.kind == LimitVerdict::Kind::Denied) {
    metrics.rate_limited.add();
    return Refusal{429, "rate limit exceeded", false};
  }
  return std::nullopt;
}

}  // namespace cachecar
