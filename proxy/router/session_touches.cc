#include "router/session_touches.h"

#include <utility>

namespace cachecar {

SessionTouches::~SessionTouches() {
  for (const auto& [tag, call] : calls_) {
    redis_.cancel(call);
  }
}

void SessionTouches::touch(RedisCommand command) {
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  metrics_.session_touches.add();
  const uint64_t tag = next_tag_++;
  RedisClient::Call* call = redis_.submit(std::move(commands), *this, tag);
  if (call == nullptr) {
    metrics_.session_touch_failures.add();
    return;
  }
  calls_.emplace(tag, call);
}

void SessionTouches::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  calls_.erase(tag);
  if (replies.empty() || is_error(replies[0].get())) {
    metrics_.session_touch_failures.add();
  }
}

}  // namespace cachecar
