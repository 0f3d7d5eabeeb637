#pragma once
// The cache's Redis writes: conditional fill, invalidation, and the journal of invalidations
// Redis did not confirm (the lookup is a stage of the request's batch: cache/lookup.h). One
// per worker, on the worker's RedisClient. Invalidations report to their asker; fills are fire
// and forget (a client never waits for one), their failures logged here.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/invalidation_journal.h"
#include "cache/near_cache.h"
#include "cache/plan.h"
#include "redis/redis_client.h"

namespace cachecar {

class JournalReplay;

struct CacheStats {
  uint64_t fills = 0;          // stored
  uint64_t fills_refused = 0;  // the guard moved: an invalidation won the race
  uint64_t fill_errors = 0;    // Redis said no (READONLY, OOM, ...) or did not answer
  uint64_t invalidations = 0;
};

class CacheStore final : private RedisWaiter {
 public:
  // `epoch_per_slot`: Redis is a cluster, with a copy of the cache epoch in every slot
  // (cache/key.h).
  CacheStore(uv_loop_t* loop, RedisClient& redis, size_t journal_max_keys, bool epoch_per_slot);
  ~CacheStore();

  // Registers the scripts; call before the client starts.
  static void register_scripts(RedisClient& redis);

  bool available() const { return redis_.ready(); }
  RedisClient& redis() { return redis_; }

  // Stores `value` if the guard still holds `seen_guard`; `epoch` is the one the lookup saw.
  void fill(const RequestPlan& plan, const std::string& seen_guard, uint64_t epoch,
            std::string value, Duration ttl);

  // Stores `response`, fetched for a request with `request` fields, as fill() does: in the
  // plan's stored form, and in cache.mode: http under its Vary variant when it varies (the key
  // then holds the vary index that leads lookups to it).
  // A response with tags (response.tags) is first recorded under each (kTagScript) and stored
  // only if every tag took it and none was purged since `lookup_unix_ms`, when the lookup read
  // `seen_guard` (cache/scripts.h says why).
  void store_response(const RequestPlan& plan, const Headers& request,
                      const std::string& seen_guard, uint64_t epoch, const CachedResponse& response,
                      Duration ttl, std::string_view key_prefix, int64_t lookup_unix_ms);

  // Deletes the plan's invalidate_keys and moves their guards, lifting `lifting` (a fence token
  // of this write's, or empty); `waiter` hears when it is done.
  RedisClient::Call* invalidate(const RequestPlan& plan, RedisWaiter& waiter, uint64_t tag,
                                std::string_view lifting = {});
  // Fences the plan's invalidate_keys with `fence_token` (from new_fence_token()) and deletes
  // them: no replica serves or fills them until the token is lifted (cache/scripts.h).
  RedisClient::Call* fence(const RequestPlan& plan, RedisWaiter& waiter, uint64_t tag,
                           std::string_view fence_token);
  std::string new_fence_token();

  // The plan's invalidation was not confirmed (`why`, for the log): journal it, replay it as
  // soon as Redis answers. `lifting`: as for invalidate().
  void owe_invalidation(const RequestPlan& plan, std::string_view why,
                        std::string_view lifting = {});
  // Something may have made any key stale unseen (`why`, for the log): bump `epoch_key`, and
  // serve nothing from Redis until Redis confirms the bump.
  void owe_epoch_bump(const std::string& epoch_key, std::string_view why);
  const InvalidationJournal& journal() const { return journal_; }
  // The worker's near cache, whose entries a write through this worker drops at once rather
  // than when Redis's message about it arrives. Requires: `near` outlives the store.
  void set_near_cache(NearCache* near) { near_ = near; }
  // Drops the plan's invalidate keys, and their query variants, from the near cache: when
  // Redis confirmed (or failed) a fence or an invalidation, and when the keys are journaled.
  void drop_from_near_cache(const RequestPlan& plan);
  void set_journal_max_keys(size_t max_keys) { journal_.set_max_keys(max_keys); }
  // Runs `callback` whenever the journal has just been emptied by a replay.
  void on_journal_emptied(std::function<void()> callback);
  // Stops replaying (the worker is ending): closes the replay's timer.
  void stop();

  const CacheStats& stats() const { return stats_; }
  // Redis refused the last fill it answered (OOM under noeviction, READONLY after a failover):
  // new misses are told BYPASS, since their answer will most likely not be stored either.
  // Fills are still attempted, and the first one Redis runs clears it.
  bool fills_failing() const { return fills_failing_; }

  // The invalidation script's commands for `keys` (the journal's replay sends them too); with
  // a `fence_token`, they fence the keys instead. One command per Redis Cluster slot: a key and
  // its companions share one (cache/key.h), but the keys of one write need not, and a script
  // may touch only one slot. Each key's guard move and delete stay atomic.
  std::vector<RedisCommand> invalidation_commands(const std::vector<OwedInvalidation>& keys,
                                                  std::string_view fence_token = {});
  // The bump of `epoch_key` (kBumpEpochScript), one call per key it moves: on a Redis Cluster
  // 16,384, each to its slot's primary.
  std::vector<RedisCommand> epoch_bump_commands(const std::string& epoch_key) const;
  // The same script for a soft purge (issue 18): the keys' entries are marked stale instead of
  // deleted, and their guards move.
  std::vector<RedisCommand> soft_purge_commands(const std::vector<OwedInvalidation>& keys);

 private:
  // A guard token not used before.
  std::string next_token();
  // kInvalidateScript for `keys`, one call per slot; `mode` its ARGV[3].
  std::vector<RedisCommand> invalidation_script_calls(const std::vector<OwedInvalidation>& keys,
                                                      const std::string& token, const char* mode);
  // Fills of one response, waiting for its tags to be recorded.
  struct TaggedFill {
    std::vector<std::pair<RequestPlan, std::string>> fills;  // plan, value
    std::string seen_guard;
    uint64_t epoch = 0;
    Duration ttl{0};
  };

  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void on_tags_recorded(TaggedFill fill, const std::vector<RedisReplyPtr>& replies);

  RedisClient& redis_;
  bool epoch_per_slot_;
  std::string token_prefix_;  // random per process, so guard tokens are unique fleet-wide
  uint64_t token_counter_ = 0;
  CacheStats stats_;
  bool fills_failing_ = false;
  InvalidationJournal journal_;
  std::unique_ptr<JournalReplay> replay_;
  NearCache* near_ = nullptr;
  std::unordered_map<uint64_t, TaggedFill> tagged_fills_;  // by call tag
  uint64_t tagged_fill_count_ = 0;
};

}  // namespace cachecar
