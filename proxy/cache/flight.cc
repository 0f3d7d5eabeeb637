#include "cache/flight.h"

#include <utility>

namespace cachecar {

Flight::Flight(Coalescer& coalescer, Listener& listener)
    : coalescer_(coalescer), listener_(listener) {}

Flight::~Flight() {
  if (role_ == Role::Follower) {
    coalescer_.leave(key_, *this);
  }
  abandon();
}

Flight::Role Flight::join(std::string key) {
  key_ = std::move(key);
  if (coalescer_.follow(key_, *this)) {
    role_ = Role::Follower;
  } else {
    coalescer_.lead(key_);
    role_ = Role::Leader;
  }
  return role_;
}

void Flight::land(const std::shared_ptr<const CachedResponse>& response) {
  if (role_ == Role::Leader) {
    role_ = Role::None;
    coalescer_.land(key_, response);
  }
}

void Flight::abandon() {
  if (role_ == Role::Leader) {
    role_ = Role::None;
    coalescer_.abandon(key_);
  }
}

// The coalescer has already dropped this follower when it calls back.
void Flight::on_flight_landed(const std::shared_ptr<const CachedResponse>& response) {
  role_ = Role::None;
  listener_.on_flight_landed(response);
}

void Flight::on_flight_abandoned() {
  role_ = Role::None;
  listener_.on_flight_abandoned();
}

}  // namespace cachecar
