#pragma once
// A worker's record of invalidations it owes Redis: a write went to the upstream (answered
// 2xx, or with an outcome nobody knows, or fenced in reject mode), but Redis did not confirm
// that the keys it may have made stale were deleted (refused, timed out, disconnected, an error
// reply). Until a replay is confirmed, the worker serves none of those
// keys from Redis; past max_keys, one bump of the cache epoch (which every lookup reads) stands
// in for them all, and until that bump is confirmed no lookup is served from Redis at all.
//
// Pure bookkeeping, no I/O: the replay (cache/journal_replay.h) takes batches and confirms
// them. A key recorded again while its replay is in flight stays owed, because that replay
// may have run in Redis before the second write reached the upstream.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/plan.h"

namespace cachecar {

struct OwedInvalidation {
  std::string key;
  std::string guard;
  std::string variants;
  std::string fences;
  std::string lifting;  // fence tokens the invalidation also lifts, comma-separated
};

struct JournalStats {
  uint64_t recorded = 0;     // keys recorded (a key recorded twice counts twice)
  uint64_t replayed = 0;     // keys whose replay Redis confirmed
  uint64_t overflows = 0;    // times max_keys was reached and the epoch took over
  uint64_t epoch_bumps = 0;  // epoch bumps Redis confirmed
};

// "a, b, c and 7 more": at most `limit` keys named, for one readable log line.
std::string named_keys(const std::vector<std::string>& keys, size_t limit);

class InvalidationJournal {
 public:
  // What one replay sends: keys with the record they answer, and whether it bumps the epoch.
  struct Batch {
    std::vector<OwedInvalidation> keys;
    std::vector<uint64_t> records;  // parallel to keys
    uint64_t epoch_record = 0;        // nonzero: the batch bumps these epochs first
    std::vector<std::string> epoch_keys;
    bool empty() const { return keys.empty() && epoch_record == 0; }
  };

  explicit InvalidationJournal(size_t max_keys) : max_keys_(max_keys) {}

  void set_max_keys(size_t max_keys) { max_keys_ = max_keys; }
  // Owes the plan's invalidate keys, lifting `fence_token` from them too when not empty. False
  // when that overflowed max_keys: the keys were then dropped in favour of an epoch bump (and
  // a fence left behind expires by itself).
  bool record(const RequestPlan& plan, std::string_view fence_token = {});
  // Owes a bump of `epoch_key`: for invalidations whose keys cannot be named.
  void record_epoch_bump(const std::string& epoch_key);

  // Whether a lookup guarded by `guard_key` must not be served from Redis.
  bool blocks(std::string_view guard_key) const {
    return epoch_owed() || (!owed_.empty() && owed_.find(guard_key) != owed_.end());
  }
  bool empty() const { return owed_.empty() && !epoch_owed(); }
  bool epoch_owed() const { return epoch_record_ != 0; }
  size_t size() const { return owed_.size(); }

  // Up to `max_keys` owed keys (and the epoch bump, when owed) for one replay.
  Batch next_batch(size_t max_keys) const;
  // Redis confirmed `batch`: forgets what it covered, unless recorded again since.
  void confirm(const Batch& batch);
  // Every owed cache key, for the log when the worker stops with them still owed.
  std::vector<std::string> keys() const;

  const JournalStats& stats() const { return stats_; }

 private:
  struct Entry {
    OwedInvalidation keys;
    uint64_t record = 0;
  };

  size_t max_keys_;
  uint64_t last_record_ = 0;
  uint64_t epoch_record_ = 0;                      // nonzero while a bump is owed
  std::vector<std::string> epoch_keys_;            // owed bumps (one, unless the prefix changed)
  // Heterogeneous lookup: a lookup's guard is checked without building a string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> owed_;  // by guard key
  JournalStats stats_;
};

}  // namespace cachecar
