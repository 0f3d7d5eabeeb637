#include "router/lookup_stage.h"

#include <spdlog/spdlog.h>

namespace cachecar {

void LookupStage::add_commands(RedisBatch& batch) {
  if (wanted()) {
    add_to(batch, lookup_commands(plan_));
  }
}

LookupResult LookupStage::finish(const std::vector<RedisReplyPtr>& batch_replies, int64_t now_ms,
                                 const InvalidationJournal& journal) {
  // Judged when the reply is read, not when the lookup is sent: the journal may have gained
  // the key meanwhile, and a reply read later than the replay's is never older than it, as
  // both travel on the worker's one connection.
  if (journal.blocks(plan_.guard_key)) {
    spdlog::debug("cache key {}: invalidation still owed; not served from Redis", plan_.key);
    return LookupResult{};
  }
  LookupResult result = read_lookup(plan_, own_replies(batch_replies), now_ms);
  if (!result.problem.empty()) {
    spdlog::warn("cache key {}: {}", plan_.key, result.problem);
  }
  return result;
}

}  // namespace cachecar
