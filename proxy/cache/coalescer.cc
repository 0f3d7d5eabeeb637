#include "cache/coalescer.h"

#include <algorithm>

namespace cachecar {

bool Coalescer::follow(const std::string& key, CoalescingFollower& follower) {
  auto it = flights_.find(key);
  if (it == flights_.end()) {
    return false;
  }
  it->second.push_back(&follower);
  return true;
}

void Coalescer::lead(const std::string& key) { flights_.try_emplace(key); }

std::vector<CoalescingFollower*> Coalescer::take(const std::string& key) {
  auto it = flights_.find(key);
  if (it == flights_.end()) {
    return {};
  }
  std::vector<CoalescingFollower*> followers = std::move(it->second);
  flights_.erase(it);
  return followers;
}

void Coalescer::land(const std::string& key,
                     const std::shared_ptr<const CachedResponse>& response) {
  for (CoalescingFollower* follower : take(key)) {
    follower->on_flight_landed(response);
  }
}

void Coalescer::abandon(const std::string& key) {
  for (CoalescingFollower* follower : take(key)) {
    follower->on_flight_abandoned();
  }
}

void Coalescer::leave(const std::string& key, CoalescingFollower& follower) {
  auto it = flights_.find(key);
  if (it == flights_.end()) {
    return;
  }
  auto& followers = it->second;
  followers.erase(std::remove(followers.begin(), followers.end(), &follower), followers.end());
}

}  // namespace cachecar
