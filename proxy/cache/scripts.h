#pragma once
// The Lua scripts that make cache-aside race-free (design.md). Each runs atomically in Redis.
//
// The race: a slow miss reads version 1 from the upstream; meanwhile a PUT writes version 2
// and deletes the key; the miss then stores version 1, stale until its TTL. So every key has a
// guard. A lookup reads the guard with the value; an invalidation replaces the guard with a
// new token (and deletes the value); a fill stores only if the guard is still the one its
// lookup saw. A fill older than half the guard's lifetime is not attempted at all, so a guard
// that expired meanwhile cannot be mistaken for one that never existed.

#include <chrono>

#include "redis/command.h"

namespace cachecar {

// KEYS[1] cache key, KEYS[2] its guard. ARGV[1] the guard seen at lookup ("" for none),
// ARGV[2] the value, ARGV[3] the TTL in seconds. Returns 1 if stored, 0 if the guard moved.
inline const RedisScript kFillScript{"fill", R"lua(
local guard = redis.call('GET', KEYS[2])
if (guard or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
)lua"};

// KEYS: n cache keys, then their n guards. ARGV[1] a token not used before, ARGV[2] the guard
// lifetime in milliseconds. SET rather than INCR: a guard holding something that is not a
// number must not make the invalidation fail. Returns the number of cache keys deleted.
inline const RedisScript kInvalidateScript{"invalidate", R"lua(
local n = #KEYS / 2
local deleted = 0
for i = 1, n do
  redis.call('SET', KEYS[n + i], ARGV[1], 'PX', ARGV[2])
  deleted = deleted + redis.call('DEL', KEYS[i])
end
return deleted
)lua"};

// How long a guard outlives the invalidation that set it. Fills older than half of it are
// dropped (see above); ten minutes covers any upstream response cachecar would wait for.
inline constexpr std::chrono::milliseconds kGuardLifetime{10 * 60 * 1000};
inline constexpr std::chrono::milliseconds kMaxFillAge{kGuardLifetime / 2};

}  // namespace cachecar
