#pragma once
// The write side of the cache, a stage of its own: what a write on an invalidating route owes
// Redis so that no read after its answer sees the entry it made stale.
//
//   journal mode (default): forward; a 2xx answer waits until Redis confirms the keys deleted.
//     Unconfirmed (refused, timed out, disconnected, an error reply): the keys go to the
//     worker's journal (cache/invalidation_journal.h) and the answer is released.
//   reject mode: before forwarding, fence the keys in Redis (a fence token on their guards,
//     their entries deleted), so every replica bypasses them while the write commits; Redis
//     unreachable or the fence unconfirmed: 503, and nothing is forwarded. After the answer,
//     whatever it is, the invalidation lifts this write's fence (journaled if unconfirmed).
//
// A forwarded write whose answer never comes (the upstream failed, the client left) may or may
// not have been applied: its keys are journaled, so they are invalidated as soon as Redis
// allows. The same goes for a write whose Redis call is still out when the stage goes away:
// the call's outcome will never be known, and a replay is harmless.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_store.h"
#include "cache/plan.h"
#include "config/config.h"
#include "redis/redis_client.h"

namespace cachecar {

class WriteInvalidation final : private RedisWaiter {
 public:
  class Listener {
   public:
    // The fence is in place (true: forward the write) or could not be confirmed (false:
    // answer 503 without forwarding).
    virtual void on_fence_done(bool fenced) = 0;
    // The answer held by after_response() may go.
    virtual void on_invalidation_done() = 0;

   protected:
    ~Listener() = default;
  };

  enum class Start {
    Forward,  // nothing to wait for
    Wait,     // the fence is out: on_fence_done() follows
    Refuse,   // Redis is known to be unreachable: answer 503 now
  };

  // Requires: `store` and `plan` outlive the stage.
  WriteInvalidation(CacheStore& store, const RequestPlan& plan, Listener& listener)
      : store_(store), plan_(plan), listener_(listener) {}
  ~WriteInvalidation();
  WriteInvalidation(const WriteInvalidation&) = delete;
  WriteInvalidation& operator=(const WriteInvalidation&) = delete;

  // Before the write is forwarded.
  Start begin(const Config& config);
  // The request head went to the upstream: from now on the write may be applied.
  void on_forwarded();
  // The upstream answered `status`, naming `tags` (cache/surrogate_keys.h): a successful
  // answer's tags are purged with the write's own keys (their sets read first, as a purge by
  // tag does: cache/purger.h). True when the answer must wait for on_invalidation_done().
  bool after_response(int status, const std::vector<std::string>& tags = {},
                      std::string_view key_prefix = {});
  // cachecar answers instead of the upstream (an error): a forwarded or fenced write owes its
  // invalidation, through the journal.
  void after_no_response();

 private:
  enum Tag : uint64_t { kFenceTag = 1, kInvalidateTag = 2, kTagsTag = 3 };

  void invalidate();
  // Journals what this write's invalidation covers.
  void owe(std::string_view why);
  void on_tags_read(const std::vector<RedisReplyPtr>& replies);

  bool invalidates() const { return plan_.action == CacheAction::Invalidate; }
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;

  CacheStore& store_;
  const RequestPlan& plan_;
  // What the invalidation covers: plan_, or plan_ with the members of the answer's tags.
  const RequestPlan* invalidated_ = &plan_;
  RequestPlan with_tags_;
  std::string key_prefix_;
  size_t tag_count_ = 0;
  Listener& listener_;
  RedisClient::Call* call_ = nullptr;
  std::string fence_token_;  // reject mode: this write's fence, once attempted
  bool fenced_ = false;      // Redis confirmed the fence
  bool forwarded_ = false;
  bool settled_ = false;  // after_response() or after_no_response() has run
};

}  // namespace cachecar
