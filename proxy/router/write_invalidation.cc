#include "router/write_invalidation.h"

#include <string>

namespace cachecar {
namespace {

bool confirmed(const std::vector<RedisReplyPtr>& replies) {
  return !replies.empty() && !is_error(replies.front().get());
}

std::string failure(const std::vector<RedisReplyPtr>& replies) {
  return replies.empty() ? std::string("Redis did not answer")
                         : "Redis answered " + std::string(reply_text(replies.front().get()));
}

}  // namespace

WriteInvalidation::~WriteInvalidation() {
  if (call_ != nullptr) {
    store_.redis().cancel(call_);
    store_.owe_invalidation(plan_, "the request ended before Redis answered");
  }
}

WriteInvalidation::Start WriteInvalidation::begin(const Config& config) {
  if (plan_.action != CacheAction::Invalidate ||
      config.cache.on_invalidation_failure != InvalidationFailure::Reject) {
    return Start::Forward;
  }
  call_ = store_.available() ? store_.invalidate(plan_, *this, kFenceTag, /*fence=*/true) : nullptr;
  return call_ != nullptr ? Start::Wait : Start::Refuse;
}

bool WriteInvalidation::after_response(int status) {
  if (plan_.action != CacheAction::Invalidate) {
    return false;
  }
  const bool success = status >= 200 && status < 300;
  if (!success && !fenced_) {
    return false;
  }
  call_ = store_.available() ? store_.invalidate(plan_, *this, kInvalidateTag) : nullptr;
  if (call_ == nullptr) {
    store_.owe_invalidation(plan_, "Redis unavailable");
    return false;
  }
  return true;
}

void WriteInvalidation::after_no_response() {
  if (fenced_) {
    fenced_ = false;
    store_.owe_invalidation(plan_, "the fenced write got no answer from the upstream");
  }
}

void WriteInvalidation::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  call_ = nullptr;
  const bool ok = confirmed(replies);
  if (tag == kFenceTag) {
    fenced_ = ok;
    if (!ok) {
      // It may have been applied all the same: the journal lifts it.
      store_.owe_invalidation(plan_, "fence " + failure(replies));
    }
    listener_.on_fence_done(ok);
    return;
  }
  if (!ok) {
    store_.owe_invalidation(plan_, failure(replies));
  }
  listener_.on_invalidation_done();
}

}  // namespace cachecar
