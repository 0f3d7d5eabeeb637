#pragma once
// The request body on its way to the upstream: bytes that arrived before an upstream
// connection was attached (they must wait, not vanish: issue 12), and a copy of what was sent
// while it is small enough to send again on a fresh connection when a pooled one turns out to
// have been closed by the upstream. Pure.

#include <cstddef>
#include <string>
#include <string_view>

namespace cachecar {

class RequestBodyBuffer {
 public:
  // Bodies up to this size are kept until the response starts, so the request can be replayed.
  static constexpr size_t kReplayLimit = 64 * 1024;
  // Held bytes beyond which the client should not be read until an upstream takes them.
  static constexpr size_t kHoldLimit = 256 * 1024;

  // Keeps framed body bytes that arrived while no upstream is attached. True the first time
  // the held bytes pass kHoldLimit: the caller then stops reading the client.
  bool hold(std::string_view bytes);
  // The held bytes, in order; the buffer forgets them.
  std::string take_held();
  bool holding() const { return !held_.empty(); }

  // Records bytes sent to the current upstream connection, for a replay.
  void sent(std::string_view bytes);
  // The response has begun: the request will not be sent again.
  void stop_replay();
  bool replayable() const { return replayable_; }
  // Everything sent so far. Requires: replayable().
  const std::string& replay() const { return replay_; }

 private:
  std::string held_;
  std::string replay_;
  bool replayable_ = true;
  bool over_hold_limit_ = false;
};

}  // namespace cachecar
