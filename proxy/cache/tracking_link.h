#pragma once
// One Redis server's half of near-cache coherence (cache/near_tracking.h): Redis announces
// changes only of the keys it holds itself, so every server the worker reads from (the one
// Redis, or each primary of a cluster) needs its own pair, in the RESP2 form hiredis 0.14
// allows:
//
//   invalidation connection:  CLIENT ID → n;  SUBSCRIBE __redis__:invalidate;  PING on ping()
//   data connection (the worker's own to that server):
//                             CLIENT TRACKING on REDIRECT n BCAST PREFIX p ...
//
// Redis forgets tracking with the data connection and tells nobody, and a redirect to a
// connection that is gone loses messages in silence: losing either connection is reported,
// and tracking is turned on again, on the new data connection or for the new invalidation
// client, before the link reports it is tracking again.
//
// Ownership: NearTracking owns the links. A link borrows its data connection, which must stop
// (so that none of its callbacks can run) before the link is destroyed.

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis_node.h"

namespace cachecar {

class TrackingLink final : private RedisWaiter {
 public:
  class Listener {
   public:
    // Tracking is confirmed (again): reads made from now on are announced when they change.
    virtual void on_link_tracking(TrackingLink& link) = 0;
    // Announcements may have been missed from now on, until on_link_tracking.
    virtual void on_link_lost(TrackingLink& link, const char* why) = 0;
    // The server refused a command of the protocol; the link has stopped for good.
    virtual void on_link_refused(TrackingLink& link, std::string_view command,
                                 std::string_view answer) = 0;
    // An announcement's payload: an array of keys, or null for FLUSHALL/FLUSHDB.
    virtual void on_link_message(const redisReply& keys) = 0;

   protected:
    ~Listener() = default;
  };

  enum class State { Waiting, Tracking, Refused };

  // `prefixes`: borrowed, read each time tracking is turned on.
  TrackingLink(uv_loop_t* loop, RedisNode& data, Listener& listener,
               const std::vector<std::string>& prefixes);
  ~TrackingLink();
  TrackingLink(const TrackingLink&) = delete;
  TrackingLink& operator=(const TrackingLink&) = delete;

  void start();
  void stop();
  // Proves the invalidation connection still answers: one that does not is dropped by its
  // command timeout, which reports the link lost.
  void ping();
  // The prefixes changed: tracking is turned on again with them.
  void retrack();
  State state() const { return state_; }
  // The server the link is for, in log lines.
  const HostPort& server() const { return data_.server(); }

 private:
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void on_subscribed(std::vector<RedisReplyPtr>& replies);
  void on_tracking_answer(std::vector<RedisReplyPtr>& replies, uint64_t client_id);
  void on_message(const redisReply& message);
  void enable_tracking();
  void lose(const char* why);
  void refuse(std::string_view command, std::string_view answer);

  RedisNode& data_;  // borrowed; stopped before this is destroyed
  RedisNode invalidations_;
  Listener& listener_;
  const std::vector<std::string>& prefixes_;
  State state_ = State::Waiting;
  int64_t client_id_ = 0;  // the invalidation connection's, once subscribed
  bool stopped_ = false;
};

}  // namespace cachecar
