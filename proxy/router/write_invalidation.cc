#include "router/write_invalidation.h"

#include <string>

namespace cachecar {
namespace {

// One reply per slot the write's keys span (CacheStore::invalidation_commands): confirmed only
// when every one is.
const redisReply* first_error(const std::vector<RedisReplyPtr>& replies) {
  for (const RedisReplyPtr& reply : replies) {
    if (is_error(reply.get())) {
      return reply.get();
    }
  }
  return nullptr;
}

bool confirmed(const std::vector<RedisReplyPtr>& replies) {
  return !replies.empty() && first_error(replies) == nullptr;
}

std::string failure(const std::vector<RedisReplyPtr>& replies) {
  return replies.empty() ? std::string("Redis did not answer")
                         : "Redis answered " + std::string(reply_text(first_error(replies)));
}

}  // namespace

WriteInvalidation::~WriteInvalidation() {
  if (call_ != nullptr) {
    store_.redis().cancel(call_);
    store_.owe_invalidation(plan_, "the request ended before Redis answered", fence_token_);
  } else if (!settled_ && (forwarded_ || fenced_)) {
    store_.owe_invalidation(plan_, "the client left before the write was answered",
                            fence_token_);
  }
}

WriteInvalidation::Start WriteInvalidation::begin(const Config& config) {
  if (!invalidates() || config.cache.on_invalidation_failure != InvalidationFailure::Reject) {
    return Start::Forward;
  }
  if (!store_.available()) {
    return Start::Refuse;
  }
  fence_token_ = store_.new_fence_token();
  call_ = store_.fence(plan_, *this, kFenceTag, fence_token_);
  return call_ != nullptr ? Start::Wait : Start::Refuse;
}

void WriteInvalidation::on_forwarded() {
  forwarded_ = invalidates();
}

bool WriteInvalidation::after_response(int status) {
  if (!invalidates() || settled_) {
    return false;
  }
  settled_ = true;
  // RFC 9111 §4.4 counts a redirect as a non-error answer too.
  const bool success = status >= 200 && (status < 300 || (plan_.http_semantics && status < 400));
  if (!success && !fenced_) {
    return false;
  }
  call_ = store_.available() ? store_.invalidate(plan_, *this, kInvalidateTag, fence_token_)
                             : nullptr;
  if (call_ == nullptr) {
    store_.owe_invalidation(plan_, "Redis unavailable", fence_token_);
    return false;
  }
  return true;
}

void WriteInvalidation::after_no_response() {
  if (settled_ || call_ != nullptr || !(forwarded_ || fenced_)) {
    return;
  }
  settled_ = true;
  store_.owe_invalidation(plan_,
                          forwarded_ ? "the write got no answer from the upstream; it may "
                                       "have been applied"
                                     : "lifting the fence of a write never forwarded",
                          fence_token_);
}

void WriteInvalidation::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  call_ = nullptr;
  const bool ok = confirmed(replies);
  if (ok) {
    // A lookup whose reply came before this one may have put the old entry in the near cache,
    // and Redis's message about the keys may come later still. (A failure is journaled below,
    // and journaling drops them too.)
    store_.drop_from_near_cache(plan_);
  }
  if (tag == kFenceTag) {
    fenced_ = ok;
    if (!ok) {
      // It may have been applied all the same: the journal lifts it.
      store_.owe_invalidation(plan_, "fence " + failure(replies), fence_token_);
    }
    listener_.on_fence_done(ok);
    return;
  }
  if (!ok) {
    store_.owe_invalidation(plan_, failure(replies), fence_token_);
  }
  listener_.on_invalidation_done();
}

}  // namespace cachecar
