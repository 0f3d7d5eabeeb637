#include "router/lookup_stage.h"

#include <spdlog/spdlog.h>

namespace cachecar {

void LookupStage::add_commands(RedisBatch& batch) {
  if (wanted()) {
    add_to(batch, lookup_commands(plan_));
  }
}

LookupResult LookupStage::finish(const std::vector<RedisReplyPtr>& batch_replies, int64_t now_ms) {
  LookupResult result = read_lookup(plan_, own_replies(batch_replies), now_ms);
  if (!result.problem.empty()) {
    spdlog::warn("cache key {}: {}", plan_.key, result.problem);
  }
  return result;
}

}  // namespace cachecar
