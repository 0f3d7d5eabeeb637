#pragma once
// The cache-lookup stage: the worker's near cache first (when it has one it may use now), then
// the entry and its invalidation guard read in the request's batch, decoded by cache/lookup.h.
// A hit read from Redis is kept in the near cache when no invalidation of its key overtook it
// (cache/near_cache.h: marks).

#include <cstdint>
#include <vector>

#include "cache/invalidation_journal.h"
#include "cache/lookup.h"
#include "cache/near_cache.h"
#include "cache/plan.h"
#include "router/stage.h"

namespace cachecar {

class LookupStage final : private BatchedStage {
 public:
  // Requires: `plan` outlives the stage.
  explicit LookupStage(const RequestPlan& plan) : plan_(plan) {}
  ~LookupStage();
  LookupStage(const LookupStage&) = delete;
  LookupStage& operator=(const LookupStage&) = delete;

  bool wanted() const { return plan_.action == CacheAction::Lookup; }
  // Looks in `near` (null: no near cache may be used now). `now_ms` is the loop's monotonic
  // clock, `unix_ms` Unix time. In cache.mode: http, `request` and `cache` judge what is found
  // (a near-cache entry that may not be served is looked up in Redis instead). Requires:
  // `near`, `request` and `cache` outlive the stage.
  void begin(NearCache* near, uint64_t now_ms, int64_t unix_ms, const Headers& request,
             const Config::Cache& cache);
  // The Redis lookup, unless the near cache had the entry; nothing before begin().
  void add_commands(RedisBatch& batch);
  // After finish() said Varies (mode http): the next add_commands() and finish() read the
  // variant of the primary key that `request` selects by `vary`, from Redis alone.
  void begin_variant(const VaryFields& vary, const Headers& request);
  // The key being looked up: the plan's, or the variant's after begin_variant().
  const std::string& key() const { return current_->key; }
  // Hit or miss from the near cache or this stage's replies (empty: Redis was not asked or
  // did not answer). A hit views into `batch_replies` or the near cache's entry: serve it
  // before they go. `unix_ms` is Unix time, `now_ms` as for begin(). A key the worker's
  // `journal` still owes an invalidation is a miss that may not be stored.
  LookupResult finish(const std::vector<RedisReplyPtr>& batch_replies, int64_t unix_ms,
                      uint64_t now_ms, const InvalidationJournal& journal);

 private:
  void keep_in_near_cache(const LookupResult& hit, int64_t unix_ms, uint64_t now_ms);

  const RequestPlan& plan_;
  RequestPlan variant_plan_;              // after begin_variant()
  const RequestPlan* current_ = &plan_;  // what is looked up
  const Headers* request_ = nullptr;     // set by begin()
  const Config::Cache* cache_ = nullptr;
  NearCache* near_ = nullptr;
  NearCache::Response near_hit_;
  NearCache::Mark mark_ = 0;  // while the Redis lookup is out
};

}  // namespace cachecar
