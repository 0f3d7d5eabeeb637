#pragma once
// The Lua scripts that make cache-aside race-free (design.md). Each runs atomically in Redis.
//
// The race: a slow miss reads version 1 from the upstream; meanwhile a PUT writes version 2
// and deletes the key; the miss then stores version 1, stale until its TTL. So every key has a
// guard. A lookup reads the guard with the value; an invalidation replaces the guard with a
// new token (and deletes the value); a fill stores only if the guard is still the one its
// lookup saw. A fill older than half the guard's lifetime is not attempted at all, so a guard
// that expired meanwhile cannot be mistaken for one that never existed.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "redis/command.h"

namespace cachecar {

// KEYS[1] cache key, KEYS[2] its guard, then the extra keys ARGV[5] names, in this order: 'v'
// the route key's variant set (for a query variant), 's' the entry's epoch stamp (format:
// body). ARGV[1] the guard seen at lookup ("" for none), ARGV[2] the value, ARGV[3] the TTL in
// seconds, ARGV[4] the time in milliseconds, ARGV[6] the epoch seen at lookup. Returns 1 if
// stored, 0 if the guard moved.
// A variant is listed with its expiry time as score; members past it are pruned here, so the
// set holds only variants that may still exist. A stamp of epoch 0 is deleted rather than
// written: absent means 0, so the common case costs no key.
inline const RedisScript kFillScript{"fill", R"lua(
local guard = redis.call('GET', KEYS[2])
if (guard or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local next_key = 3
if string.find(ARGV[5], 'v', 1, true) then
  local variants = KEYS[next_key]
  next_key = next_key + 1
  local now = tonumber(ARGV[4])
  local ttl_ms = tonumber(ARGV[3]) * 1000
  redis.call('ZADD', variants, now + ttl_ms, KEYS[1])
  redis.call('ZREMRANGEBYSCORE', variants, '-inf', now)
  if redis.call('PTTL', variants) < ttl_ms then
    redis.call('PEXPIRE', variants, ttl_ms)
  end
end
if string.find(ARGV[5], 's', 1, true) then
  if ARGV[6] == '0' then
    redis.call('DEL', KEYS[next_key])
  else
    redis.call('SET', KEYS[next_key], ARGV[6], 'EX', ARGV[3])
  end
end
return 1
)lua"};

// KEYS: n cache keys, their n guards, their n variant sets, then their n fence sets. ARGV[1] a
// token not used before, ARGV[2] the guard lifetime in milliseconds, ARGV[3] "fence" to fence
// the keys (the token is then a fence token), "soft" to mark them stale (a soft purge) or "" to
// invalidate them, ARGV[3 + i] the fence tokens (comma-separated, maybe none) that this call
// lifts from key i. Returns the number of cache keys deleted (soft: marked), variants included.
//
// Every call deletes each key and its variants (their names are read from the set: a Redis
// Cluster would need them in the key's slot). The guard moves to the new token unless another
// write's fence still stands on the key: while a fence set holds a live token the guard stays a
// fence, so no replica serves or fills the key until the last of those writes is answered.
// SET rather than INCR: a guard holding something that is not a number must not make the call
// fail. The time is Redis's own (TIME), so replicas with skewed clocks agree on expiry.
// The DEL comes first: under maxmemory with noeviction Redis refuses a script only before its
// first write, so an invalidation still runs (and frees memory) when Redis is full.
//
// A soft purge keeps the entries and their variant sets, and marks each envelope stale in place
// (cache/envelope.h: "CCE" becomes "CCS", the purge's time appended; SETRANGE and APPEND keep
// the TTL and tell near caches that track the key). The guard moves all the same: a fill begun
// before the purge does not store. A value that is not a whole envelope (a route's bare body)
// cannot carry the mark and is deleted; a vary index ("CCV1") stays, as its variants are marked;
// an entry marked before keeps its first mark.
inline const RedisScript kInvalidateScript{"invalidate", R"lua(
local n = #KEYS / 4
local token = ARGV[1]
local lifetime = tonumber(ARGV[2])
local fencing = ARGV[3] == 'fence'
local soft = ARGV[3] == 'soft'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function little_endian(bytes)
  local value = 0
  for i = #bytes, 1, -1 do
    value = value * 256 + string.byte(bytes, i)
  end
  return value
end
local stale_since = ''
if soft then
  local bytes, rest = {}, now
  for i = 1, 8 do
    bytes[i] = rest % 256
    rest = math.floor(rest / 256)
  end
  stale_since = string.char(unpack(bytes))
end
-- Whether the value's lengths add up as an envelope's do, read in place.
local function whole_envelope(key, with_epoch)
  local size = redis.call('STRLEN', key)
  local at = with_epoch and 22 or 14
  if size < at + 4 then
    return false
  end
  at = at + 4 + little_endian(redis.call('GETRANGE', key, at, at + 3))
  if size < at + 4 then
    return false
  end
  return at + 4 + little_endian(redis.call('GETRANGE', key, at, at + 3)) == size
end
local function mark_stale(key)
  local magic = redis.pcall('GETRANGE', key, 0, 3)
  if type(magic) ~= 'string' then
    return redis.call('DEL', key)  -- not a string: no entry of ours
  elseif magic == '' then
    return 0
  elseif magic == 'CCS1' or magic == 'CCS2' then
    return 1
  elseif magic == 'CCV1' then
    return 0
  elseif (magic == 'CCE1' or magic == 'CCE2') and whole_envelope(key, magic == 'CCE2') then
    redis.call('SETRANGE', key, 2, 'S')
    redis.call('APPEND', key, stale_since)
    return 1
  end
  return redis.call('DEL', key)
end
local deleted = 0
for i = 1, n do
  if soft then
    deleted = deleted + mark_stale(KEYS[i])
  else
    deleted = deleted + redis.call('DEL', KEYS[i])
  end
  local guard = KEYS[n + i]
  local fences = KEYS[3 * n + i]
  for lifted in string.gmatch(ARGV[3 + i] or '', '[^,]+') do
    redis.call('ZREM', fences, lifted)
  end
  redis.call('ZREMRANGEBYSCORE', fences, '-inf', now)
  if fencing then
    redis.call('ZADD', fences, now + lifetime, token)
    redis.call('PEXPIRE', fences, lifetime)
    redis.call('SET', guard, token, 'PX', lifetime)
  elseif redis.call('ZCARD', fences) == 0 then
    redis.call('SET', guard, token, 'PX', lifetime)
  end
  local variants = redis.call('ZRANGE', KEYS[2 * n + i], 0, -1)
  if soft then
    for _, variant in ipairs(variants) do
      deleted = deleted + mark_stale(variant)
    end
  else
    for first = 1, #variants, 1000 do
      deleted = deleted + redis.call('DEL', unpack(variants, first, math.min(first + 999, #variants)))
    end
    redis.call('DEL', KEYS[2 * n + i])
  end
end
return deleted
)lua"};

// KEYS[1] the cache epoch. Adds one to it; a value that is not a number (written by someone
// else) counts as 0, so the bump cannot be refused for it. No expiry: entries of every age
// are compared with it.
inline const RedisScript kBumpEpochScript{"bump_epoch", R"lua(
local epoch = (tonumber(redis.call('GET', KEYS[1])) or 0) + 1
redis.call('SET', KEYS[1], epoch)
return epoch
)lua"};

// Tags (issue 18). KEYS[1] a tag's set (cache/key.h: tag_set_key_for), KEYS[2] the time of its
// last purge. ARGV[1] the member: the stored key, "\n", the guard its fill checks; ARGV[2] the
// entry's TTL in milliseconds; ARGV[3] the Unix time in milliseconds when the fill's lookup read
// the guard, ARGV[4] the clock skew allowed between cachecar and Redis, in milliseconds.
// Returns 1 when the member is recorded, 0 when the tag was purged after the lookup: the fill
// must then not store.
//
// Why the fill asks first: a purge reads the tag's members, then moves their guards. A fill
// begun before the purge whose key joins the set only after the purge read it would otherwise
// store after the purge, unseen by it. Run before the fill, this script either records the key
// before the purge reads the set (the purge then moves its guard: the fill is refused, or its
// entry deleted) or finds the purge's time, later than the lookup, and stops the fill.
inline const RedisScript kTagScript{"tag", R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local purged = tonumber(redis.call('GET', KEYS[2]) or '')
if purged and purged >= tonumber(ARGV[3]) - tonumber(ARGV[4]) then
  return 0
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
)lua"};

// KEYS[1] a tag's set, KEYS[2] the time of its last purge; ARGV[1] how long that time is kept,
// in milliseconds (longer than any fill may take: kMaxFillAge), ARGV[2] "soft" for a soft
// purge. Records the purge, and returns the members of entries that may still exist; the caller
// then invalidates them (kInvalidateScript, per slot). A purge empties the set; a soft one
// keeps it, since its entries stay (stale) and a later purge of the tag must still find them.
inline const RedisScript kPurgeTagScript{"purge_tag", R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('SET', KEYS[2], now, 'PX', ARGV[1])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
if ARGV[2] ~= 'soft' then
  redis.call('DEL', KEYS[1])
end
return members
)lua"};

// How far cachecar's clock may run ahead of Redis's for kTagScript: a purge within this of a
// fill's lookup stops the fill (one more miss, never a stale entry).
inline constexpr std::chrono::milliseconds kTagClockSkew{1000};

// The lookup time a fill gives kTagScript (its ARGV[3]): `looked_up_unix_ms` on cachecar's
// clock, or later when the lookup read a soft purge's mark made at `after_purge_ms` (Redis's
// clock; 0 for none). Such a lookup came after that purge, so only purges after the mark's
// millisecond stop the fill: without this, the refresh of a soft-purged entry would be refused
// for the skew allowed above, and the entry served stale meanwhile by the whole fleet. (The
// tag purge and its mark are often one millisecond; another purge in that very millisecond,
// after this lookup, is the one taken for earlier.)
inline int64_t tag_check_lookup_ms(int64_t looked_up_unix_ms, int64_t after_purge_ms) {
  if (after_purge_ms == 0) {
    return looked_up_unix_ms;
  }
  return std::max(looked_up_unix_ms, after_purge_ms + kTagClockSkew.count() + 1);
}

// A guard token that fences a key: a write in on_invalidation_failure: reject mode moved the
// guard to it before the write was forwarded. A lookup that sees it never serves nor fills
// the key (the write may be committing upstream); the invalidation after the answer of the
// last write fencing the key replaces it (see kInvalidateScript).
inline constexpr std::string_view kFenceTokenPrefix = "fence-";

// How long a guard outlives the invalidation that set it. Fills older than half of it are
// dropped (see above); ten minutes covers any upstream response cachecar would wait for.
inline constexpr std::chrono::milliseconds kGuardLifetime{10 * 60 * 1000};
inline constexpr std::chrono::milliseconds kMaxFillAge{kGuardLifetime / 2};

}  // namespace cachecar
