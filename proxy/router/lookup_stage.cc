#include "router/lookup_stage.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "cache/vary.h"

namespace cachecar {

LookupStage::~LookupStage() {
  if (mark_ != 0) {
    near_->release(plan_.key, mark_);
  }
}

void LookupStage::begin(NearCache* near, uint64_t now_ms, int64_t unix_ms, const Headers& request,
                        const Config::Cache& cache) {
  request_ = &request;
  cache_ = &cache;
  if (!wanted() || near == nullptr) {
    return;
  }
  near_ = near;
  near_hit_ = near->find(plan_.key, now_ms);
  if (near_hit_ != nullptr && plan_.http_semantics) {
    const HttpVerdict::Kind kind = judge_stored(near_hit_->view(), request, unix_ms / 1000, cache).kind;
    if (kind == HttpVerdict::Kind::MustValidate || kind == HttpVerdict::Kind::WhileRevalidating) {
      // Only Redis's copy knows the guard a revalidation's fill must find.
      near_hit_ = nullptr;
    }
  }
}

void LookupStage::add_commands(RedisBatch& batch) {
  if (request_ == nullptr || !wanted() || near_hit_ != nullptr) {  // not begun: nothing yet
    return;
  }
  if (near_ != nullptr) {
    mark_ = near_->mark(plan_.key);  // before the lookup leaves: see near_cache.h
  }
  add_to(batch, lookup_commands(*current_, near_ != nullptr));
}

void LookupStage::begin_variant(const VaryFields& vary, const Headers& request) {
  variant_plan_ = vary_variant_plan(plan_, selector_digest(variant_selector(vary, request)),
                                    cache_->key_prefix);
  current_ = &variant_plan_;
  near_ = nullptr;  // the near cache keeps primary keys' entries only
  near_hit_ = nullptr;
}

LookupResult LookupStage::finish(const std::vector<RedisReplyPtr>& batch_replies, int64_t unix_ms,
                                 uint64_t now_ms, const InvalidationJournal& journal) {
  const bool intact = mark_ != 0 && near_->release(plan_.key, mark_);
  mark_ = 0;
  // Judged when the reply is read, not when the lookup is sent: the journal may have gained
  // the key meanwhile, and a reply read later than the replay's is never older than it, as
  // both travel on the worker's one connection. The near cache's entries were dropped when
  // the key was journaled, and none is stored while it is.
  if (journal.blocks(plan_.guard_key)) {
    spdlog::debug("cache key {}: invalidation still owed; not served from Redis", plan_.key);
    return LookupResult{};
  }
  if (near_hit_ != nullptr) {
    LookupResult result;
    result.kind = LookupResult::Kind::Hit;
    result.entry = near_hit_->view();
    result.age_seconds = (unix_ms - near_hit_->stored_at_ms) / 1000;
    if (plan_.http_semantics) {
      judge_http_hit(result, *request_, unix_ms, *cache_);
    }
    return result;
  }
  LookupResult result = read_lookup(*current_, own_replies(batch_replies), unix_ms);
  if (!result.problem.empty()) {
    spdlog::warn("cache key {}: {}", current_->key, result.problem);
  }
  if (result.kind == LookupResult::Kind::Varies && current_ != &plan_) {
    result.kind = LookupResult::Kind::Miss;  // an index where a variant belongs: never followed
  }
  // A soft-purged entry is stale for every request from now on: Redis's copy, which the next
  // fill replaces, is the one to judge.
  if (intact && result.kind == LookupResult::Kind::Hit && result.ttl_left_ms > 0 &&
      result.entry.stale_since_ms == 0) {
    keep_in_near_cache(result, unix_ms, now_ms);
  }
  if (plan_.http_semantics) {
    judge_http_hit(result, *request_, unix_ms, *cache_);
  }
  return result;
}

void LookupStage::keep_in_near_cache(const LookupResult& hit, int64_t unix_ms, uint64_t now_ms) {
  const CachedView view = hit.view();
  auto copy = std::make_shared<CachedResponse>();
  copy->status = view.status;
  copy->head_lines.assign(view.head_lines);
  copy->body.assign(view.body);
  // A bare body has no stored time: the one its Age implies keeps later Ages counting on.
  copy->stored_at_ms =
      view.stored_at_ms != 0 ? view.stored_at_ms : unix_ms - hit.age_seconds * 1000;
  near_->store(plan_.key, plan_.guard_key, std::move(copy), now_ms, hit.ttl_left_ms);
}

}  // namespace cachecar
