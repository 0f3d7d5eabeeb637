#pragma once
// Where a Redis client connects next, when that is not simply the URL's host: under Sentinel,
// the master the sentinels name at that moment, asked again on every connection attempt;
// for the sentinels themselves, the next in the list.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/endpoints.h"

namespace cachecar {

class RedisLocator {
 public:
  using Located = std::function<void(std::optional<HostPort> address, const std::string& error)>;

  virtual ~RedisLocator() = default;
  // Calls `located` once, possibly before returning, unless forget(asker) first. One
  // question per asker at a time.
  virtual void locate(const void* asker, Located located) = 0;
  // Drops the asker's question and its watch.
  virtual void forget(const void* asker) = 0;
  // `moved` runs whenever the address the asker was given stops being the right one (the
  // sentinels announced a new master). Replaces the asker's earlier watch.
  virtual void watch(const void* /*asker*/, std::function<void()> /*moved*/) {}
};

// The addresses of a list in turn, one per question: a failed sentinel is followed by the next.
class RotatingLocator final : public RedisLocator {
 public:
  explicit RotatingLocator(std::vector<HostPort> addresses) : addresses_(std::move(addresses)) {}
  void locate(const void*, Located located) override {
    const HostPort& address = addresses_[next_++ % addresses_.size()];
    located(address, "");
  }
  void forget(const void*) override {}
  // Requires: `addresses` is not empty.
  void set_addresses(std::vector<HostPort> addresses) { addresses_ = std::move(addresses); }

 private:
  std::vector<HostPort> addresses_;
  size_t next_ = 0;
};

}  // namespace cachecar
