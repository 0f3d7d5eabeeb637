#pragma once
// The cache-lookup stage: reads the entry and its invalidation guard in the request's batch,
// and says hit or miss through cache/lookup.h's decoder.

#include <cstdint>
#include <vector>

#include "cache/invalidation_journal.h"
#include "cache/lookup.h"
#include "cache/plan.h"
#include "router/stage.h"

namespace cachecar {

class LookupStage final : private BatchedStage {
 public:
  // Requires: `plan` outlives the stage.
  explicit LookupStage(const RequestPlan& plan) : plan_(plan) {}
  bool wanted() const { return plan_.action == CacheAction::Lookup; }
  void add_commands(RedisBatch& batch);
  // Hit or miss from this stage's replies (empty: Redis was not asked or did not answer).
  // A hit views into `batch_replies`: serve it before they go. `now_ms` is Unix time. A key the
  // worker's `journal` still owes an invalidation is a miss that may not be stored.
  LookupResult finish(const std::vector<RedisReplyPtr>& batch_replies, int64_t now_ms,
                      const InvalidationJournal& journal);

 private:
  const RequestPlan& plan_;
};

}  // namespace cachecar
