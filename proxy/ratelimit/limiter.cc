#include "ratelimit/limiter.h"

#include <algorithm>

#include "http/wire_text.h"
#include "ratelimit/client_identity.h"

namespace cachecar {
namespace {

int64_t ceil_seconds(int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

// Bounds that keep the sliding-window products in 64 bits: a count beyond 2^31 is "far over
// any limit" (limits are at most 10^9), and the configuration allows no window over a day.
constexpr int64_t kMaxCount = int64_t{1} << 31;
constexpr int64_t kMaxWindowMs = kMaxRateLimitWindow.count();

// Sliding window, denied: how long until one more request would be allowed if none came
// before it. The end of the window is no answer: the count of this window then weighs in as
// the next one's previous, nearly in full. The previous window's weight decays through this
// window; after it, this window's does. Rounded up, so a client that waits is let in.
int64_t sliding_wait_ms(int64_t limit, int64_t window_ms, int64_t elapsed_ms, int64_t current,
                        int64_t previous) {
  // Requests this window could still count while previous * (window - t) / window shrinks.
  const int64_t room = limit - current - 1;
  if (room >= 0 && previous > 0) {
    const int64_t allowed_at = window_ms - room * window_ms / previous;
    if (allowed_at < window_ms) {
      return std::max<int64_t>(0, allowed_at - elapsed_ms);
    }
  }
  // Next window: current * (window - t) / window + 1 <= limit.
  const int64_t allowed_at_next =
      current > 0 ? std::max<int64_t>(0, window_ms - (limit - 1) * window_ms / current) : 0;
  return window_ms - elapsed_ms + allowed_at_next;
}

std::optional<int64_t> element_integer(const redisReply* reply, size_t index) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements <= index) {
    return std::nullopt;
  }
  return reply_integer(reply->element[index]);
}

}  // namespace

RateLimitKey rate_limit_key_for(const Config& config, const RouteConfig* route) {
  if (route != nullptr && route->rate_limit && route->rate_limit->key) {
    return *route->rate_limit->key;
  }
  return config.rate_limit.key;
}

bool rate_limit_by_user(const Config& config, const RouteConfig* route) {
  const bool route_off = route != nullptr && route->rate_limit && !route->rate_limit->enabled;
  return config.rate_limit.enabled && !route_off &&
         rate_limit_key_for(config, route) != RateLimitKey::Ip;
}

std::optional<LimitPlan> plan_rate_limit(const Config& config, const RouteConfig* route,
                                         const IpAddress& client, int64_t now_ms,
                                         const std::string* user) {
  const Config::RateLimit& global = config.rate_limit;
  if (!global.enabled || in_any(global.allow, client)) {
    return std::nullopt;
  }
  LimitPlan plan;
  plan.limit = global.limit;
  plan.window = global.window;
  plan.algorithm = global.algorithm;
  std::string_view scope = "global";
  if (route != nullptr && route->rate_limit) {
    const RouteRateLimit& own = *route->rate_limit;
    if (!own.enabled) {
      return std::nullopt;
    }
    plan.limit = own.limit.value_or(plan.limit);
    plan.window = own.window.value_or(plan.window);
    plan.algorithm = own.algorithm.value_or(plan.algorithm);
    scope = own.scope;
  }
  const RateLimitKey counted_by = rate_limit_key_for(config, route);
  const bool per_user = counted_by != RateLimitKey::Ip && user != nullptr;
  if (counted_by == RateLimitKey::SessionUser && !per_user) {
    return std::nullopt;  // only signed-in requests are counted
  }
  // Every limited request builds this key: one allocation, sized first. "user:" keeps a user
  // named like an address apart from that address's own counter.
  const std::string bucket = per_user ? "user:" + *user : client_bucket(client, global.ipv6_prefix);
  const bool sliding = plan.algorithm != RateLimitAlgorithm::FixedWindow;
  const size_t base_size = global.key_prefix.size() + scope.size() + 1 + bucket.size();
  plan.key.reserve(base_size + (sliding ? 3 + WireText::kMaxDecimal : 0));
  plan.key += global.key_prefix;
  if (!sliding) {
    plan.key += scope;
    plan.key += ':';
    plan.key += bucket;
    return plan;
  }
  // The script reads this window and the one before: a hash tag keeps both in one Redis
  // Cluster slot ("rl:{global:192.0.2.1}:28"). A key_prefix with a tag of its own wins, as
  // Redis hashes the first one.
  plan.key += '{';
  plan.key += scope;
  plan.key += ':';
  plan.key += bucket;
  plan.key += '}';
  const int64_t window_ms = plan.window.count();
  const int64_t index = now_ms / window_ms;
  plan.elapsed_ms = now_ms % window_ms;
  plan.previous_key = plan.key;
  plan.key += ':';
  plan.key += std::to_string(index);
  plan.previous_key += ':';
  plan.previous_key += std::to_string(index - 1);
  return plan;
}

RedisCommand limiter_command(const LimitPlan& plan) {
  RedisCommand command;
  if (plan.algorithm == RateLimitAlgorithm::FixedWindow) {
    command.script = &kFixedWindowScript;
    command.num_keys = 1;
    command.args = {plan.key, std::to_string(plan.window.count())};
  } else {
    command.script = &kSlidingWindowScript;
    command.num_keys = 2;
    command.args = {plan.key, plan.previous_key, std::to_string(plan.window.count())};
  }
  return command;
}

std::optional<LimitCounts> read_counts(const redisReply* reply) {
  const auto first = element_integer(reply, 0);
  const auto second = element_integer(reply, 1);
  if (!first || !second) {
    return std::nullopt;
  }
  return LimitCounts{*first, *second};
}

std::optional<LimitDecision> decide(const LimitPlan& plan, const redisReply* reply) {
  const auto counts = read_counts(reply);
  if (!counts) {
    return std::nullopt;
  }
  return decide_counts(plan, *counts);
}

LimitDecision decide_counts(const LimitPlan& plan, LimitCounts counts) {
  LimitDecision decision;
  decision.limit = plan.limit;
  // Counters come from Redis, which anyone with access can write: a negative or absurd count
  // must deny, never overflow the arithmetic below.
  const int64_t first_count = std::clamp<int64_t>(counts.first, 0, kMaxCount);
  const int64_t second_value = counts.second;
  if (plan.algorithm == RateLimitAlgorithm::FixedWindow) {
    decision.allowed = first_count <= plan.limit;
    decision.remaining = std::max<int64_t>(0, plan.limit - first_count);
    decision.reset_seconds =
        ceil_seconds(std::clamp<int64_t>(second_value, 0, plan.window.count()));
    return decision;
  }
  // estimate = previous * (window - elapsed) / window + current, kept in whole numbers
  // (scaled by window) so an estimate that is exactly the limit is not rounded past it.
  // kMaxCount and the window's bound keep every product below 2^63.
  const int64_t previous = std::clamp<int64_t>(second_value, 0, kMaxCount);
  const int64_t window_ms = std::clamp<int64_t>(plan.window.count(), 1, kMaxWindowMs);
  const int64_t elapsed_ms = std::clamp<int64_t>(plan.elapsed_ms, 0, window_ms);
  const int64_t scaled_estimate = previous * (window_ms - elapsed_ms) + first_count * window_ms;
  decision.allowed = scaled_estimate <= plan.limit * window_ms;
  const int64_t estimate_ceiling = (scaled_estimate + window_ms - 1) / window_ms;
  decision.remaining = std::max<int64_t>(0, plan.limit - estimate_ceiling);
  decision.reset_seconds =
      decision.allowed
          ? ceil_seconds(window_ms - elapsed_ms)
          : ceil_seconds(sliding_wait_ms(plan.limit, window_ms, elapsed_ms, first_count, previous));
  return decision;
}

int64_t sliding_wait_ms(const LimitPlan& plan, int64_t current, int64_t previous) {
  const int64_t window_ms = std::clamp<int64_t>(plan.window.count(), 1, kMaxWindowMs);
  return sliding_wait_ms(plan.limit, window_ms, std::clamp<int64_t>(plan.elapsed_ms, 0, window_ms),
                         std::clamp<int64_t>(current, 0, kMaxCount),
                         std::clamp<int64_t>(previous, 0, kMaxCount));
}

LimitVerdict read_limit(const LimitPlan& plan, StageReplies replies) {
  LimitVerdict verdict;
  const redisReply* reply = replies.empty() ? nullptr : replies.front().get();
  if (reply == nullptr) {
    return verdict;
  }
  const std::optional<LimitCounts> counts = read_counts(reply);
  if (!counts) {
    verdict.problem = is_error(reply) ? reply_text(reply) : std::string_view("wrong shape");
    return verdict;
  }
  verdict.counts = *counts;
  verdict.decision = decide_counts(plan, *counts);
  verdict.kind =
      verdict.decision->allowed ? LimitVerdict::Kind::Allowed : LimitVerdict::Kind::Denied;
  return verdict;
}

RateLimitLines rate_limit_lines(const LimitPlan& plan, const LimitDecision& decision) {
  RateLimitLines lines;
  WireText text(lines.bytes_.data());
  text.put("RateLimit-Limit: ");
  text.put_count(decision.limit);
  text.put("\r\nRateLimit-Remaining: ");
  text.put_count(decision.remaining);
  text.put("\r\nRateLimit-Reset: ");
  text.put_count(decision.reset_seconds);
  text.put("\r\nRateLimit-Policy: ");
  text.put_count(plan.limit);
  text.put(";w=");
  text.put_count(ceil_seconds(plan.window.count()));
  text.put("\r\n");
  if (!decision.allowed) {
    text.put("Retry-After: ");
    text.put_count(std::max<int64_t>(1, decision.reset_seconds));
    text.put("\r\n");
  }
  lines.size_ = static_cast<size_t>(text.end() - lines.bytes_.data());
  return lines;
}

}  // namespace cachecar
