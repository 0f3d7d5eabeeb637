#include "router/rate_limit_stage.h"

#include <spdlog/spdlog.h>

#include "ratelimit/batched_limiter.h"

namespace cachecar {

void RateLimitStage::begin(const Config& config, const RouteConfig* route, const IpAddress& client,
                           int64_t now_ms, BatchedLimiter* batched, const std::string* user) {
  plan_ = plan_rate_limit(config, route, client, now_ms, user);
  if (!plan_ || batched == nullptr || config.rate_limit.sync != RateLimitSync::Batched) {
    return;
  }
  LocalVerdict verdict = batched->decide(*plan_, config.rate_limit);
  if (verdict.kind == LocalVerdict::Kind::AskRedis) {
    batched_ = batched;  // Redis's answer seeds the worker's counts
    asked_ms_ = batched->now_ms();
    return;
  }
  local_ = verdict;
}

void RateLimitStage::add_commands(RedisBatch& batch) {
  if (plan_ && !local_) {
    add_to(batch, limiter_command(*plan_));
  }
}

std::optional<Refusal> RateLimitStage::finish(const std::vector<RedisReplyPtr>& batch_replies,
                                              const Config& config, WorkerMetrics& metrics) {
  if (!plan_) {
    return std::nullopt;
  }
  LimitVerdict verdict;
  if (local_) {
    // Decided from the worker's counts: an empty batch (nothing else asked Redis, or Redis is
    // down) changes nothing.
    verdict.kind = local_->kind == LocalVerdict::Kind::Allowed ? LimitVerdict::Kind::Allowed
                                                               : LimitVerdict::Kind::Denied;
    verdict.decision = local_->decision;
  } else {
    verdict = read_limit(*plan_, own_replies(batch_replies));
    if (batched_ != nullptr && verdict.kind != LimitVerdict::Kind::Unavailable) {
      batched_->learn(*plan_, verdict.counts, asked_ms_);
    }
  }
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
