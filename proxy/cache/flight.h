#pragma once
// One request's place in a coalescing flight (see coalescer.h): it leads the fetch for its
// key, follows another request's, or has no part. The object remembers which, so that its
// owner going away always does the right thing: a follower leaves, a leader abandons (its
// followers then fetch for themselves). Pure: no loop, no socket.
//
// Ownership: owned by its request; borrows the worker's Coalescer and the listener, both of
// which outlive it.

#include <memory>
#include <string>

#include "cache/coalescer.h"

namespace cachecar {

class Flight final : private CoalescingFollower {
 public:
  class Listener {
   public:
    // The leader's response, shareable and complete.
    virtual void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) = 0;
    // The leader's response cannot be shared: fetch alone.
    virtual void on_flight_abandoned() = 0;

   protected:
    ~Listener() = default;
  };

  enum class Role { None, Leader, Follower };

  Flight(Coalescer& coalescer, Listener& listener);
  ~Flight();
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;

  // Follows the flight for `key` if one is in the air, else leads a new one.
  // Requires: role() == Role::None.
  Role join(std::string key);
  Role role() const { return role_; }
  bool leading() const { return role_ == Role::Leader; }

  // A leader's flight ends: every follower is answered with `response`. No-op otherwise.
  void land(const std::shared_ptr<const CachedResponse>& response);
  // A leader's flight ends: every follower fetches for itself. No-op otherwise.
  void abandon();

 private:
  void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) override;
  void on_flight_abandoned() override;

  Coalescer& coalescer_;
  Listener& listener_;
  std::string key_;
  Role role_ = Role::None;
};

}  // namespace cachecar
