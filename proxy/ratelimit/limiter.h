#pragma once
// The rate limiter's policy: which counter a request increments, the Redis script call that
// does it, and what its answer means. Pure: the clock is passed in, the reply is a value, so
// the window maths are tested without Redis or sleeping.
//
// Fixed window: one counter per client, its expiry set atomically with the first hit of the
// window (Lua), so every instance of a fleet counts into the same window. Sliding window: the
// weighted two-window estimate, count(previous) * (1 - elapsed/window) + count(current), with
// windows aligned to the epoch so every instance agrees which window is current.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
  std::string key;           // rl:<scope>:<client or user:<user>> (sliding: plus ":<window>")
  std::string previous_key;  // sliding: the previous window's counter
  int64_t elapsed_ms = 0;    // sliding: time since the current window began
};

// Whose requests a route's counter counts: its rate_limit.key, else the global one.
RateLimitKey rate_limit_key_for(const Config& config, const RouteConfig* route);

// A limit applies to the route and counts users: the request's session must be read first.
bool rate_limit_by_user(const Config& config, const RouteConfig* route);

// nullopt when no limit applies: limiting off (globally or for the route), the client is in
// rate_limit.allow, or the counter is a session user's and `user` (the user of the request's
// valid session, null without one) is null. `now_ms` is Unix time.
std::optional<LimitPlan> plan_rate_limit(const Config& config, const RouteConfig* route,
                                         const IpAddress& client, int64_t now_ms,
                                         const std::string* user = nullptr);

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

// The two integers of the script's reply, as decide() reads them; nullopt as for decide().
struct LimitCounts {
  int64_t first = 0;   // the count in the current window, this request included
  int64_t second = 0;  // fixed: ms left in the window; sliding: the previous window's count
};
std::optional<LimitCounts> read_counts(const redisReply* reply);
// decide() from counts already read, so a batched worker's local decision (ratelimit/
// local_counts.h) carries exactly the headers Redis's answer would have.
LimitDecision decide_counts(const LimitPlan& plan, LimitCounts counts);
// Sliding window: how long until one more request would be allowed if none came before it,
// with `current` requests counted in this window so far and `previous` in the one before.
int64_t sliding_wait_ms(const LimitPlan& plan, int64_t current, int64_t previous);

// The limiter's verdict from its own replies in the request's batch (one: the script call).
struct LimitVerdict {
  enum class Kind {
    Allowed,
    Denied,       // over the limit: 429
    Unavailable,  // Redis did not answer, or answered nonsense: rate_limit.on_redis_error
  };
  Kind kind = Kind::Unavailable;
  std::optional<LimitDecision> decision;  // Allowed and Denied
  LimitCounts counts;                     // Allowed and Denied: what Redis answered
  // Unavailable with a reply: what Redis said instead, for the log.
  std::string problem;
};
LimitVerdict read_limit(const LimitPlan& plan, StageReplies replies);

// "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset" and "RateLimit-Policy"
// ("100;w=60") lines, the fields express-rate-limit sends (draft-ietf-httpapi-ratelimit-
// headers), plus Retry-After when the request was denied; each "Name: value\r\n", ready to be
// written into any response head. A value that carries its bytes: every limited response
// has these lines, and they cost no allocation.
class RateLimitLines {
 public:
  // The longest: five names, ": ", ";w=" and six numbers of kMaxDecimal digits, five CRLFs.
  static constexpr size_t kCapacity = 224;

  std::string_view view() const { return std::string_view(bytes_.data(), size_); }

 private:
  friend RateLimitLines rate_limit_lines(const LimitPlan& plan, const LimitDecision& decision);
  std::array<char, kCapacity> bytes_;
  size_t size_ = 0;
};
RateLimitLines rate_limit_lines(const LimitPlan& plan, const LimitDecision& decision);

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

// rate_limit.sync: batched. Adds a worker's coalesced count (ARGV[1]) to a counter that still
// exists, and reports {total, ms left, previous window's count (sliding; else 0)}. A counter
// that is gone (its window ended, or Redis lost it) is not recreated: counts of an ended
// window must not open the next one. Then the reply is {-1, -2, 0}. ARGV[2] is the expiry to
// give a counter that has none, as the exact scripts would have.
inline const RedisScript kSettleScript{"settle_counts", R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, -2, 0}
end
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
local previous = 0
if #KEYS > 1 then
  previous = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
end
return {total, ttl, previous}
)lua"};

}  // namespace cachecar
