#pragma once
// Sends a worker's owed invalidations (cache/invalidation_journal.h) to Redis: the epoch bump
// first when one is owed, then the keys in batches, each batch one invalidation script, so a
// guard is moved and its key deleted exactly as the write's own invalidation would have.
// Starts when Redis becomes ready and whenever something is owed. After an error reply (OOM,
// READONLY) it retries with backoff, so a Redis that stays connected but refuses is retried
// too; a lost connection is retried when the client has reconnected. One batch at a time,
// sent in calls of at most kCallCommands: a bump on a Redis Cluster is 16,385 script calls,
// whose one call could outlast command_timeout, be dropped and be sent again forever. A batch
// is confirmed when its last call is; one that fails is sent again whole (a bump sent twice
// only counts the epoch on further).

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "cache/invalidation_journal.h"
#include "redis/redis_client.h"
#include "uv/handle.h"

namespace cachecar {

class CacheStore;

class JournalReplay final : private RedisWaiter {
 public:
  // Keys per invalidation script: enough to empty a large journal quickly, few enough that
  // one script does not stall Redis for other clients.
  static constexpr size_t kBatchKeys = 256;
  // Commands per call: a few milliseconds of Redis time, well inside any command_timeout.
  static constexpr size_t kCallCommands = 1024;

  JournalReplay(uv_loop_t* loop, CacheStore& store, InvalidationJournal& journal);
  ~JournalReplay();
  JournalReplay(const JournalReplay&) = delete;
  JournalReplay& operator=(const JournalReplay&) = delete;

  // Replays now if Redis is ready and no batch is in flight; otherwise when one of those ends.
  void kick();
  void on_emptied(std::function<void()> callback) { on_emptied_ = std::move(callback); }
  void stop();

 private:
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  // Submits the next call of unsent_; false when Redis took none.
  bool send_next_call();
  void retry_later(std::string_view why);

  CacheStore& store_;
  InvalidationJournal& journal_;
  UvPtr<uv_timer_t> retry_timer_;
  RedisClient::Call* call_ = nullptr;
  InvalidationJournal::Batch batch_;  // what the calls replay
  std::vector<RedisCommand> unsent_;  // batch_'s commands not yet in a call
  size_t next_unsent_ = 0;
  uint32_t failures_ = 0;  // refusals in a row, for the backoff
  std::mt19937 random_{std::random_device{}()};
  bool logged_failure_ = false;
  std::function<void()> on_emptied_;
};

}  // namespace cachecar
