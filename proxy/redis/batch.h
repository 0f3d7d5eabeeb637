#pragma once
// One request's Redis batch: every stage before the upstream (rate limit, cache lookup, and
// whatever comes next) adds its commands, the batch goes out as one call (one round trip), and
// each stage reads back only the replies to its own commands. Pure: commands and replies are
// values, so a stage's decoder is tested without a socket.
//
// A stage keeps the ReplySlice that add() returned and later asks replies_for() with it; it
// never indexes the whole reply vector, so adding a stage cannot shift another's replies.

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "redis/command.h"
#include "redis/reply.h"

namespace cachecar {

// Where one stage's commands sit in the batch.
struct ReplySlice {
  size_t first = 0;
  size_t count = 0;
};

// The replies of one stage. Empty when the call failed as a whole (Redis down, timed out,
// disconnected): the stage then decides without Redis.
using StageReplies = std::span<const RedisReplyPtr>;

class RedisBatch {
 public:
  ReplySlice add_one(RedisCommand command) {
    commands_.push_back(std::move(command));
    return ReplySlice{commands_.size() - 1, 1};
  }
  ReplySlice add(std::vector<RedisCommand> commands) {
    const ReplySlice slice{commands_.size(), commands.size()};
    for (RedisCommand& command : commands) {
      commands_.push_back(std::move(command));
    }
    return slice;
  }
  bool empty() const { return commands_.empty(); }
  std::vector<RedisCommand> take() { return std::exchange(commands_, {}); }

 private:
  std::vector<RedisCommand> commands_;
};

// `replies` holds one reply per command of the batch, or none when the call failed.
inline StageReplies replies_for(const std::vector<RedisReplyPtr>& replies, ReplySlice slice) {
  if (slice.count == 0 || replies.size() < slice.first + slice.count) {
    return {};
  }
  return StageReplies(replies).subspan(slice.first, slice.count);
}

}  // namespace cachecar
