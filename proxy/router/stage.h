#pragma once
// The steps a request takes before it may reach the upstream (admission, the rate limit, the
// cache lookup, and later sessions) are stages. A stage that needs Redis adds its commands to
// the request's one batch, so that all of them cost one round trip together, and reads back
// only the replies to its own commands. A stage that refuses the request says how to answer.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "redis/batch.h"

namespace cachecar {

// A stage's "no": the error answer the client gets instead of the upstream's.
struct Refusal {
  int status = 400;
  std::string reason;             // the error body's message
  bool close_connection = false;  // the request itself is broken: nothing after it is trusted
};

// The bookkeeping every Redis-using stage shares: where its commands sit in the batch.
class BatchedStage {
 protected:
  void add_to(RedisBatch& batch, RedisCommand command) { slice_ = batch.add_one(std::move(command)); }
  void add_to(RedisBatch& batch, std::vector<RedisCommand> commands) {
    slice_ = batch.add(std::move(commands));
  }
  // This stage's replies among the whole batch's; empty when the call failed or the stage
  // added nothing.
  StageReplies own_replies(const std::vector<RedisReplyPtr>& batch_replies) const {
    return replies_for(batch_replies, slice_);
  }

 private:
  ReplySlice slice_;
};

}  // namespace cachecar
