#include "router/request_body.h"

#include <utility>

namespace cachecar {

bool RequestBodyBuffer::hold(std::string_view bytes) {
  held_.append(bytes);
  if (!over_hold_limit_ && held_.size() > kHoldLimit) {
    over_hold_limit_ = true;
    return true;
  }
  return false;
}

std::string RequestBodyBuffer::take_held() {
  over_hold_limit_ = false;
  return std::exchange(held_, {});
}

void RequestBodyBuffer::sent(std::string_view bytes) {
  if (!replayable_) {
    return;
  }
  if (replay_.size() + bytes.size() <= kReplayLimit) {
    replay_.append(bytes);
  } else {
    stop_replay();
  }
}

void RequestBodyBuffer::stop_replay() {
  replayable_ = false;
  std::string().swap(replay_);
}

}  // namespace cachecar
