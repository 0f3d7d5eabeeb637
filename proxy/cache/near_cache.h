#pragma once
// A worker's near cache (L1): a byte-bounded LRU of responses recently read from Redis, kept
// in front of it so that a hot key costs no Redis round trip (issue 14). Pure bookkeeping: the
// clock is passed in, and Redis's invalidation messages arrive as calls (cache/near_tracking.h
// does the I/O). One per worker; not thread-safe.
//
// Coherence rests on three rules:
//  - An entry lives no longer than its key's TTL in Redis, nor max_ttl.
//  - An entry is dropped when Redis says its key changed; everything is dropped when the
//    connection that would say so is lost (clear()).
//  - Redis may send a key's invalidation, on the other connection, before the reply it makes
//    stale. So a lookup marks its key before it is sent, an invalidation of the key removes
//    the mark, and the reply is stored only if its mark survived.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/envelope.h"
#include "config/duration.h"

namespace cachecar {

struct NearCacheStats {
  uint64_t hits = 0;
  uint64_t stores = 0;
  uint64_t invalidations = 0;  // entries dropped because their key changed
  uint64_t evictions = 0;      // entries dropped for room, or because they expired
  uint64_t flushes = 0;        // times everything was dropped
};

class NearCache {
 public:
  using Response = std::shared_ptr<const CachedResponse>;
  // Lookups of one key in flight share a mark; 0 is never a mark.
  using Mark = uint64_t;

  NearCache(size_t max_bytes, Duration max_ttl);
  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  // For entries stored from now on; a smaller max_bytes evicts at once.
  void set_limits(size_t max_bytes, Duration max_ttl);

  // The fresh entry for `key`, or nullptr. `now_ms` is a monotonic clock.
  Response find(std::string_view key, uint64_t now_ms);

  // `key` is about to be read from Redis: the mark its reply must still find.
  Mark mark(std::string_view key);
  // The read of `mark` is over (answered, failed or abandoned). True when no invalidation of
  // `key` arrived since mark(): only then may its reply be stored.
  bool release(std::string_view key, Mark mark);

  // Stores the response read for `key` (guarded by `guard_key`, which a key's query variants
  // share), for at most `redis_ttl_ms` (what Redis has left of it) and max_ttl.
  // Requires: release() of this read's mark returned true.
  void store(std::string_view key, std::string_view guard_key, Response response, uint64_t now_ms,
             int64_t redis_ttl_ms);

  // Redis says `key` changed (or was deleted, or expired).
  void invalidate(std::string_view key);
  // A write through this worker moved `guard_key`: the key and all its query variants.
  void invalidate_guard(std::string_view guard_key);
  // Everything, marks too: a lost connection or FLUSHALL.
  void clear();

  size_t bytes() const { return bytes_; }
  size_t size() const { return index_.size(); }
  const NearCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::string key;
    std::string guard_key;
    Response response;
    uint64_t expires_ms = 0;
    size_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first

  struct MarkState {
    Mark mark = 0;
    uint32_t readers = 0;
  };

  void erase(Lru::iterator entry);
  void evict_to(size_t max_bytes);
  void drop_mark(std::string_view key);

  // Hash and equality over string_view, so a lookup by view builds no string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  size_t max_bytes_;
  uint64_t max_ttl_ms_;
  size_t bytes_ = 0;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator, Hash, Equal> index_;
  // Entries by guard, for invalidate_guard(): a route key's entry and its variants'.
  std::unordered_multimap<std::string, std::string, Hash, Equal> by_guard_;
  std::unordered_map<std::string, MarkState, Hash, Equal> marks_;
  Mark next_mark_ = 1;
  NearCacheStats stats_;
};

}  // namespace cachecar
