#pragma once
// The rate limiter's policy: which counter a request increments, the Redis script call that
// does it, and what its answer means. Pure: the clock is passed in, the reply is a value, so
// the window maths are tested without Redis or sleeping.
//
// Fixed window: one counter per client, its expiry set atomically with the first hit of the
// window (Lua), so every instance of a fleet counts into the same window. Sliding window: the
// weighted two-window estimate, count(previous) * (1 - elapsed/window) + count(current), with
// windows aligned to the epoch so every instance agrees which window is current.

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"
#include "http/message.h"
#include "net/ip.h"
#include "redis/batch.h"
#include "redis/command.h"
#include "redis/reply.h"

namespace cachecar {

struct LimitPlan {
  int64_t limit = 0;
  Duration window{0};
  RateLimitAlgorithm algorithm = RateLimitAlgorithm::FixedWindow;
  std::string key;           // rl:<scope>:<client> (sliding: plus ":<window index>")
  std::string previous_key;  // sliding: the previous window's counter
  int64_t elapsed_ms = 0;    // sliding: time since the current window began
};

// nullopt when no limit applies: limiting off (globally or for the route), or the client is
// in rate_limit.allow. `now_ms` is Unix time.
std::optional<LimitPlan> plan_rate_limit(const Config& config, const RouteConfig* route,
                                         const IpAddress& client, int64_t now_ms);

// The script call that counts this request (EVALSHA, reloaded after NOSCRIPT).
RedisCommand limiter_command(const LimitPlan& plan);

struct LimitDecision {
  bool allowed = true;
  int64_t limit = 0;
  int64_t remaining = 0;
  // Until the counter's window ends; when denied, until a request would be let in again
  // (the same for a fixed window; for a sliding one, often sooner or later). Retry-After.
  int64_t reset_seconds = 0;
};

// Reads the script's reply: {count, ms left} (fixed) or {current, previous} (sliding).
// nullopt for an error or a reply of the wrong shape.
std::optional<LimitDecision> decide(const LimitPlan& plan, const redisReply* reply);

// The limiter's verdict from its own replies in the request's batch (one: the script call).
struct LimitVerdict {
  enum class Kind {
    Allowed,
    Denied,       // over the limit: 429
    Unavailable,  // Redis did not answer, or answered nonsense: rate_limit.on_redis_error
  };
  Kind kind = Kind::Unavailable;
  std::optional<LimitDecision> decision;  // Allowed and Denied
  // Unavailable with a reply: what Redis said instead, for the log.
  std::string problem;
};
LimitVerdict read_limit(const LimitPlan& plan, StageReplies replies);

// "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset" and "RateLimit-Policy"
// ("100;w=60") lines, the fields express-rate-limit sends (draft-ietf-httpapi-ratelimit-
// headers), plus Retry-After when the request was denied; each "Name: value\r\n", ready to be
// written into any response head.
std::string rate_limit_lines(const LimitPlan& plan, const LimitDecision& decision);

inline const RedisScript kFixedWindowScript{"fixed_window", R"lua(
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
)lua"};

inline const RedisScript kSlidingWindowScript{"sliding_window", R"lua(
local current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
return {current, previous}
)lua"};

}  // namespace cachecar
