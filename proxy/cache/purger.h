#pragma once
// Purges (issue 18), for the admin API: keys, a prefix or tags removed from the cache for the
// whole fleet at once, outside the write path. Runs on the admin loop with a Redis connection
// of its own, and removes entries exactly as a write's invalidation does (kInvalidateScript):
// the entry and its variants deleted, its guard moved, so a fill begun before the purge
// cannot store after it.
//
//   keys    invalidated as named (cache.key_prefix added)
//   tags    kPurgeTagScript records the purge and hands over the tag's members; a fill that
//           races it either joins the set first (and is invalidated with it) or finds the
//           purge recorded and does not store (cache/scripts.h)
//   prefix  SCAN of every server commands go to (one, or each primary of a Redis Cluster),
//           bounded by kMaxPrefixKeys (the report says when more remain), each key's route key
//           invalidated, per slot
//   soft    any of the above marking entries stale in place instead (kInvalidateScript), so
//           that mode http may still serve them as RFC 9111 and RFC 5861 allow a stale
//           response: revalidated (a 304 keeps the body), while revalidating, on error
//
// When Redis does not confirm: named keys go to this process's invalidation journal and are
// replayed on reconnect; a tag or prefix purge that could not read its keys bumps the cache
// epoch instead (every entry becomes a miss), since nothing else names what it would remove;
// so does a prefix purge that a server left (a cluster's failover) before it was read.
// Either is a hard purge: what a soft purge owes is settled by deleting, never by waiting.
//
// Ownership: the Supervisor owns it on its loop and calls stop() before the loop ends; a
// purge's `done` runs exactly once, on that loop.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/invalidation_journal.h"
#include "cache/purge_order.h"
#include "config/config.h"
#include "redis/redis_client.h"
#include "redis/redis_factory.h"

namespace cachecar {

class CacheStore;

struct PurgeReport {
  int status = 200;      // 200 done; 202 owed to Redis (see pending); 503 refused
  std::string kind;      // PurgeOrder::kind()
  size_t named = 0;      // entries the purge found to remove (keys, tag members, prefix matches)
  uint64_t deleted = 0;  // keys Redis deleted, variants included
  bool soft = false;     // marked stale rather than deleted
  // soft: keys marked stale (or deleted, where no mark fits), variants included
  uint64_t marked = 0;
  bool complete = true;  // false: a prefix purge stopped at kMaxPrefixKeys; purge again
  std::string pending;   // "" | "journal" | "epoch": what is owed until Redis confirms
  std::string error;     // with 503
};

class Purger final : private RedisWaiter {
 public:
  using Done = std::function<void(const PurgeReport&)>;

  Purger(uv_loop_t* loop, std::shared_ptr<const Config> config);
  ~Purger();
  Purger(const Purger&) = delete;
  Purger& operator=(const Purger&) = delete;

  // A reload's configuration (cache.key_prefix); Redis's address stays the one started with.
  void set_config(std::shared_ptr<const Config> config) { config_ = std::move(config); }
  void purge(PurgeOrder order, Done done);
  void stop();
  const PurgeStats& stats() const { return stats_; }

 private:
  struct Job;
  enum class Step : uint64_t { Tags = 1, Scan = 2, Invalidate = 3 };

  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void advance(Job& job);
  bool send(Job& job, Step step, std::vector<RedisCommand> commands);
  void scan_next(Job& job);
  // The server a prefix purge's SCAN reads next, nullptr when none is left; marks the job when
  // one it was to read has left.
  RedisNode* scan_server(Job& job);
  void invalidate_next(Job& job);
  void on_tags(Job& job, const std::vector<RedisReplyPtr>& replies);
  void on_scan(Job& job, const std::vector<RedisReplyPtr>& replies);
  void on_invalidated(Job& job, const std::vector<RedisReplyPtr>& replies);
  void owe_invalidation(Job& job, std::string_view why);
  void finish(Job& job);

  uv_loop_t* loop_;
  std::shared_ptr<const Config> config_;
  RedisConnection redis_;
  std::vector<RedisNode*> servers_;    // as watch_nodes() reports them: one, or the primaries
  std::unique_ptr<CacheStore> store_;  // its invalidation commands, journal and replay
  std::unordered_map<uint64_t, std::unique_ptr<Job>> jobs_;
  uint64_t next_job_ = 1;
  PurgeStats stats_;
  bool stopped_ = false;
};

}  // namespace cachecar
