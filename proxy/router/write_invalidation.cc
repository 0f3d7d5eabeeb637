#include "router/write_invalidation.h"

#include <string>

#include "cache/key.h"
#include "cache/purge_order.h"

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
    owe("the request ended before Redis answered");
    if (tag_count_ > 0 && invalidated_ == &plan_) {
      store_.owe_epoch_bump(epoch_key_for(key_prefix_),
                            "a write's tags were never read from Redis");
    }
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

bool WriteInvalidation::after_response(int status, const std::vector<std::string>& tags,
                                       std::string_view key_prefix) {
  if (!invalidates() || settled_) {
    return false;
  }
  settled_ = true;
  // RFC 9111 §4.4 counts a redirect as a non-error answer too.
  const bool success = status >= 200 && (status < 300 || (plan_.http_semantics && status < 400));
  if (!success && !fenced_) {
    return false;
  }
  if (success && !tags.empty()) {
    key_prefix_ = key_prefix;
    tag_count_ = tags.size();
    std::vector<RedisCommand> commands;
    for (const std::string& tag : tags) {
      commands.push_back(purge_tag_command(key_prefix, tag, false));
    }
    call_ =
        store_.available() ? store_.redis().submit(std::move(commands), *this, kTagsTag) : nullptr;
    if (call_ != nullptr) {
      return true;
    }
    store_.owe_epoch_bump(epoch_key_for(key_prefix),
                          "a write's tags could not be read: Redis "
                          "unavailable");
  }
  invalidate();
  return call_ != nullptr;
}

void WriteInvalidation::invalidate() {
  call_ = store_.available() ? store_.invalidate(*invalidated_, *this, kInvalidateTag, fence_token_)
                             : nullptr;
  if (call_ == nullptr) {
    owe("Redis unavailable");
  }
}

void WriteInvalidation::owe(std::string_view why) {
  if (invalidated_ == &with_tags_) {
    // The tags' members may be variants sharing a guard: the journal holds their route keys.
    store_.owe_invalidation(journal_form(with_tags_, key_prefix_), why, fence_token_);
  } else {
    store_.owe_invalidation(plan_, why, fence_token_);
  }
}

void WriteInvalidation::on_tags_read(const std::vector<RedisReplyPtr>& replies) {
  with_tags_ = plan_;
  const bool all_read = read_tag_members(
      replies, tag_count_, key_prefix_,
      [this](OwedInvalidation owed) { add_invalidation(with_tags_, std::move(owed)); });
  invalidated_ = &with_tags_;
  if (!all_read) {
    store_.owe_epoch_bump(epoch_key_for(key_prefix_),
                          "a write's tags could not be read from Redis");
  }
  invalidate();
  if (call_ == nullptr) {
    listener_.on_invalidation_done();
  }
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
  if (tag == kTagsTag) {
    on_tags_read(replies);
    return;
  }
  const bool ok = confirmed(replies);
  if (ok) {
    // A lookup whose reply came before this one may have put the old entry in the near cache,
    // and Redis's message about the keys may come later still. (A failure is journaled below,
    // and journaling drops them too.)
    store_.drop_from_near_cache(*invalidated_);
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
    owe(failure(replies));
  }
  listener_.on_invalidation_done();
}

}  // namespace cachecar
