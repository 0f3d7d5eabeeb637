#pragma once
// The product API of the invalidation tests, as a TestUpstream handler: each path holds a value
// that only a PUT changes, so a read showing an older value than the last PUT answered is stale
// by construction. Hooks let a test hold, drop or slow the upstream's side of a write or read.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "support/test_upstream.h"

namespace cachecar::test {

class Catalog {
 public:
  explicit Catalog(TestUpstream& upstream) {
    upstream.set_handler([this](const ReceivedRequest& request) { return handle(request); });
  }

  void set(const std::string& path, const std::string& value) {
    std::lock_guard<std::mutex> lock(mutex_);
    values_[path] = value;
  }
  // Runs once, on the upstream's thread, after the next write is applied and before it is
  // answered: a fault injected here meets the write's invalidation, not its forwarding.
  void on_next_write(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mutex_);
    on_write_ = std::move(hook);
  }
  int writes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return writes_;
  }
  // The next `count` writes are applied, then their connection is closed unanswered.
  void drop_write_answers(int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    unanswered_writes_ = count;
  }
  // A write of `body` waits, not yet applied, until release_held_write() (10 s at most, so a
  // failed test cannot hang the upstream).
  void hold_write(const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_body_ = body;
  }
  bool wait_until_held() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [this] { return holding_; });
  }
  void release_held_write() {
    std::lock_guard<std::mutex> lock(mutex_);
    held_body_.reset();
    changed_.notify_all();
  }
  // Reads of `path` are answered `delay` late, with the value they found on arrival.
  void slow_reads(const std::string& path, std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mutex_);
    slow_path_ = path;
    slow_delay_ = delay;
  }

 private:
  UpstreamReply handle(const ReceivedRequest& request) {
    std::function<void()> hook;
    UpstreamReply reply;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (request.method == "PUT" && held_body_ == request.body) {
        holding_ = true;
        changed_.notify_all();
        changed_.wait_for(lock, std::chrono::seconds(10),
                          [this] { return !held_body_.has_value(); });
        holding_ = false;
      }
      if (request.method == "PUT") {
        values_[request.target] = request.body;
        ++writes_;
        hook = std::exchange(on_write_, {});
        reply.body = "stored";
        if (unanswered_writes_ > 0) {
          --unanswered_writes_;
          reply.fault = UpstreamReply::Fault::CloseBeforeResponse;
        }
      } else {
        reply.body = values_.count(request.target) ? values_[request.target] : "none";
        if (request.target == slow_path_) {
          reply.delay = slow_delay_;
        }
      }
    }
    if (hook) {
      hook();
    }
    return reply;
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::string> values_;
  std::function<void()> on_write_;
  int writes_ = 0;
  int unanswered_writes_ = 0;
  std::condition_variable changed_;
  std::optional<std::string> held_body_;
  bool holding_ = false;
  std::string slow_path_;
  std::chrono::milliseconds slow_delay_{0};
};

}  // namespace cachecar::test
