#pragma once
// Request coalescing: concurrent misses for one key in one worker cause one upstream request
// (nginx's proxy_cache_lock). The first miss leads a "flight"; later misses follow it and are
// answered from its response when it lands. A flight that cannot be shared (the response was
// not cacheable, or the leader failed or went away) is abandoned: each follower then fetches
// for itself, because an uncacheable response (Set-Cookie, private) must never be shared.
//
// The flight key is the caller's: the exchange uses the cache key plus the invalidation guard
// its lookup saw, so a miss after a write never shares a fetch that began before that write.
//
// Per worker, no locks. Followers are borrowed: one that goes away must leave().

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/envelope.h"

namespace cachecar {

class CoalescingFollower {
 public:
  virtual void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) = 0;
  virtual void on_flight_abandoned() = 0;

 protected:
  ~CoalescingFollower() = default;
};

class Coalescer {
 public:
  // True (and `follower` registered) when a flight for `key` is in the air.
  bool follow(const std::string& key, CoalescingFollower& follower);
  // Starts a flight. Requires: none in the air for `key`.
  void lead(const std::string& key);
  // Ends the flight: every follower is answered with `response`.
  void land(const std::string& key, const std::shared_ptr<const CachedResponse>& response);
  // Ends the flight: every follower fetches for itself.
  void abandon(const std::string& key);
  void leave(const std::string& key, CoalescingFollower& follower);

  size_t flights() const { return flights_.size(); }

 private:
  // The followers are taken out before any is called back: a callback may start a new
  // flight for the same key.
  std::vector<CoalescingFollower*> take(const std::string& key);

  std::unordered_map<std::string, std::vector<CoalescingFollower*>> flights_;
};

}  // namespace cachecar
