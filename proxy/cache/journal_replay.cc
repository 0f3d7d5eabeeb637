#include "cache/journal_replay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <random>

#include "cache/cache_store.h"
#include "redis/backoff.h"

namespace cachecar {
namespace {

// Shorter than the reconnect backoff: Redis is up, and every retry may end the bypass.
constexpr BackoffPolicy kRetryBackoff{std::chrono::milliseconds(100), std::chrono::milliseconds(2'000)};

}  // namespace

JournalReplay::JournalReplay(uv_loop_t* loop, CacheStore& store, InvalidationJournal& journal)
    : store_(store), journal_(journal), retry_timer_(make_timer(loop, this)) {}

JournalReplay::~JournalReplay() {
  if (call_ != nullptr) {
    store_.redis().cancel(call_);
  }
}

void JournalReplay::stop() {
  retry_timer_.reset();
  if (call_ != nullptr) {
    store_.redis().cancel(call_);
    call_ = nullptr;
  }
}

void JournalReplay::kick() {
  if (call_ != nullptr || journal_.empty() || !store_.available()) {
    return;  // a batch is out, nothing is owed, or Redis's return will call again
  }
  if (retry_timer_ && uv_is_active(reinterpret_cast<uv_handle_t*>(retry_timer_.get()))) {
    return;  // backing off after a refusal
  }
  batch_ = journal_.next_batch(kBatchKeys);
  unsent_.clear();
  next_unsent_ = 0;
  for (const std::string& epoch_key : batch_.epoch_keys) {
    for (RedisCommand& bump : store_.epoch_bump_commands(epoch_key)) {
      unsent_.push_back(std::move(bump));
    }
  }
  if (!batch_.keys.empty()) {
    for (RedisCommand& command : store_.invalidation_commands(batch_.keys)) {
      unsent_.push_back(std::move(command));
    }
  }
  if (!send_next_call()) {
    batch_ = {};  // Redis went away meanwhile: its return kicks again
  }
}

bool JournalReplay::send_next_call() {
  const size_t count = std::min(kCallCommands, unsent_.size() - next_unsent_);
  const auto first = unsent_.begin() + static_cast<std::ptrdiff_t>(next_unsent_);
  std::vector<RedisCommand> commands(
      std::make_move_iterator(first),
      std::make_move_iterator(first + static_cast<std::ptrdiff_t>(count)));
  next_unsent_ += count;
  call_ = store_.redis().submit(std::move(commands), *this, 0);
  return call_ != nullptr;
}

void JournalReplay::on_redis_done(uint64_t /*tag*/, std::vector<RedisReplyPtr>& replies) {
  call_ = nullptr;
  if (replies.empty()) {
    // Only a lost connection fails a call: the client reconnects with its own backoff, and
    // its return kicks the replay.
    batch_ = {};
    return;
  }
  for (const RedisReplyPtr& reply : replies) {
    if (is_error(reply.get())) {
      retry_later(reply_text(reply.get()));
      return;
    }
  }
  if (next_unsent_ < unsent_.size()) {
    if (!send_next_call()) {
      batch_ = {};
    }
    return;
  }
  unsent_.clear();
  journal_.confirm(batch_);
  if (batch_.epoch_record != 0) {
    spdlog::info("cache epoch bumped: every entry stored before it is now a miss");
  }
  spdlog::debug("cache invalidation journal: {} key(s) replayed, {} still owed",
                batch_.keys.size(), journal_.size());
  failures_ = 0;
  logged_failure_ = false;
  batch_ = {};
  if (journal_.empty()) {
    spdlog::info("cache invalidation journal replayed; {} key(s) in all since start",
                 journal_.stats().replayed);
    if (on_emptied_) {
      on_emptied_();
    }
    return;
  }
  kick();
}

void JournalReplay::retry_later(std::string_view why) {
  if (!logged_failure_) {
    spdlog::warn("cache invalidation journal: replay of {} key(s) failed ({}); retrying",
                 batch_.keys.size(), why);
    logged_failure_ = true;
  }
  batch_ = {};
  if (!retry_timer_) {
    return;  // stopped
  }
  const auto delay = backoff_delay(kRetryBackoff, failures_++,
                                   std::uniform_real_distribution<double>(0, 1)(random_));
  uv_timer_start(
      retry_timer_.get(), [](uv_timer_t* timer) { owner_of<JournalReplay>(timer)->kick(); },
      static_cast<uint64_t>(delay.count()), 0);
}

}  // namespace cachecar
