#include "cache/cache_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "cache/http_semantics.h"
#include "cache/journal_replay.h"
#include "cache/key.h"
#include "cache/scripts.h"
#include "cache/vary.h"
#include "redis/cluster_slots.h"
#include "uv/unix_clock.h"

namespace cachecar {
namespace {

constexpr uint64_t kFillTag = 1;
// Tag-recording calls carry this bit and a count: each finds its waiting fills by it.
constexpr uint64_t kTaggedFillBit = uint64_t{1} << 63;
// Owed keys named in one log line; the rest are counted.
constexpr size_t kLoggedKeys = 10;

std::string random_hex(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    const auto byte = static_cast<unsigned>(device()) & 0xff;
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

}  // namespace

CacheStore::CacheStore(uv_loop_t* loop, RedisClient& redis, size_t journal_max_keys,
                       bool epoch_per_slot)
    : redis_(redis),
      epoch_per_slot_(epoch_per_slot),
      token_prefix_(random_hex(8)),
      journal_(journal_max_keys),
      replay_(std::make_unique<JournalReplay>(loop, *this, journal_)) {
  redis_.on_ready([this] { replay_->kick(); });
}

CacheStore::~CacheStore() = default;

void CacheStore::register_scripts(RedisClient& redis) {
  redis.register_script(&kFillScript);
  redis.register_script(&kInvalidateScript);
  redis.register_script(&kBumpEpochScript);
  redis.register_script(&kTagScript);
  redis.register_script(&kPurgeTagScript);
}

void CacheStore::store_response(const RequestPlan& plan, const Headers& request,
                                const std::string& seen_guard, uint64_t epoch,
                                const CachedResponse& response, Duration ttl,
                                std::string_view key_prefix, int64_t lookup_unix_ms) {
  std::string value = plan.route != nullptr && plan.route->format == StoredFormat::Body
                          ? response.body
                          : encode_envelope(response, epoch);
  const VaryFields vary =
      plan.http_semantics ? parse_vary(parse_head_lines(response.head_lines)) : VaryFields{};
  // The response is stored under its Vary variant's key when it varies, and the key then holds
  // the index that leads lookups to it.
  std::optional<RequestPlan> variant;
  if (!vary.names.empty()) {
    variant = vary_variant_plan(plan, selector_digest(variant_selector(vary, request)), key_prefix);
  }
  const RequestPlan& stored = variant ? *variant : plan;
  if (response.tags.empty()) {
    fill(stored, seen_guard, epoch, std::move(value), ttl);
    if (variant) {
      fill(plan, seen_guard, epoch, encode_vary_index(vary), ttl);
    }
    return;
  }
  // Tagged: the same fills, held until every tag has recorded the entry (cache/scripts.h).
  const std::string member = stored.key + "\n" + stored.guard_key;
  TaggedFill pending{{}, seen_guard, epoch, ttl};
  pending.fills.emplace_back(stored, std::move(value));
  if (variant) {
    pending.fills.emplace_back(plan, encode_vary_index(vary));
  }
  const std::string ttl_ms = std::to_string(std::max<int64_t>(1000, ttl.count()));
  std::vector<RedisCommand> commands;
  for (const std::string& tag : response.tags) {
    RedisCommand command;
    command.script = &kTagScript;
    command.num_keys = 2;
    command.args = {
        tag_set_key_for(key_prefix, tag), tag_purged_key_for(key_prefix, tag),  member, ttl_ms,
        std::to_string(lookup_unix_ms),   std::to_string(kTagClockSkew.count())};
    commands.push_back(std::move(command));
  }
  const uint64_t call_tag = kTaggedFillBit | ++tagged_fill_count_;
  if (redis_.submit(std::move(commands), *this, call_tag) == nullptr) {
    ++stats_.fill_errors;  // an entry whose tags are not recorded could not be purged by them
    return;
  }
  tagged_fills_.emplace(call_tag, std::move(pending));
}

void CacheStore::on_tags_recorded(TaggedFill pending, const std::vector<RedisReplyPtr>& replies) {
  if (replies.empty()) {
    ++stats_.fill_errors;
    return;
  }
  for (const RedisReplyPtr& reply : replies) {
    if (is_error(reply.get())) {
      ++stats_.fill_errors;
      spdlog::warn("recording a tag, Redis answered {}; the entry is not stored",
                   reply_text(reply.get()));
      return;
    }
    if (reply_integer(reply.get()) != 1) {
      ++stats_.fills_refused;
      spdlog::debug("cache fill skipped: one of its tags was purged while it was fetched");
      return;
    }
  }
  for (auto& [fill_plan, fill_value] : pending.fills) {
    fill(fill_plan, pending.seen_guard, pending.epoch, std::move(fill_value), pending.ttl);
  }
}

void CacheStore::fill(const RequestPlan& plan, const std::string& seen_guard, uint64_t epoch,
                      std::string value, Duration ttl) {
  const int64_t seconds = std::max<int64_t>(1, ttl.count() / 1000);
  const int64_t now_ms = unix_now_ms();
  RedisCommand command;
  command.script = &kFillScript;
  command.args = {plan.key, plan.guard_key};
  std::string extras;
  if (!plan.variants_key.empty()) {
    command.args.push_back(plan.variants_key);
    extras += 'v';
  }
  if (!plan.epoch_stamp_key.empty()) {
    command.args.push_back(plan.epoch_stamp_key);
    extras += 's';
  }
  command.num_keys = static_cast<int>(command.args.size());
  command.args.push_back(seen_guard);
  command.args.push_back(std::move(value));
  command.args.push_back(std::to_string(seconds));
  command.args.push_back(std::to_string(now_ms));
  command.args.push_back(std::move(extras));
  command.args.push_back(std::to_string(epoch));
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  if (redis_.submit(std::move(commands), *this, kFillTag) == nullptr) {
    ++stats_.fill_errors;
  }
}

std::vector<RedisCommand> CacheStore::invalidation_commands(
    const std::vector<OwedInvalidation>& keys, std::string_view fence_token) {
  if (fence_token.empty()) {
    return invalidation_script_calls(keys, next_token(), "");
  }
  return invalidation_script_calls(keys, std::string(fence_token), "fence");
}

std::vector<RedisCommand> CacheStore::soft_purge_commands(
    const std::vector<OwedInvalidation>& keys) {
  return invalidation_script_calls(keys, next_token(), "soft");
}

std::string CacheStore::next_token() {
  return token_prefix_ + "-" + std::to_string(++token_counter_);
}

std::vector<RedisCommand> CacheStore::invalidation_script_calls(
    const std::vector<OwedInvalidation>& keys, const std::string& token, const char* mode) {
  // The keys of each slot, in the order their slots first appear.
  std::vector<std::pair<int, std::vector<const OwedInvalidation*>>> slots;
  for (const OwedInvalidation& owed : keys) {
    const int slot = key_hash_slot(owed.key);
    auto group = std::find_if(slots.begin(), slots.end(),
                              [slot](const auto& g) { return g.first == slot; });
    if (group == slots.end()) {
      slots.push_back({slot, {}});
      group = slots.end() - 1;
    }
    group->second.push_back(&owed);
  }
  std::vector<RedisCommand> commands;
  commands.reserve(slots.size());
  for (const auto& [slot, group] : slots) {
    RedisCommand command;
    command.script = &kInvalidateScript;
    command.num_keys = static_cast<int>(group.size() * 4);
    command.args.reserve(group.size() * 5 + 3);
    for (const OwedInvalidation* owed : group) {
      command.args.push_back(owed->key);
    }
    for (const OwedInvalidation* owed : group) {
      command.args.push_back(owed->guard);
    }
    for (const OwedInvalidation* owed : group) {
      command.args.push_back(owed->variants);
    }
    for (const OwedInvalidation* owed : group) {
      command.args.push_back(owed->fences);
    }
    command.args.push_back(token);
    command.args.push_back(std::to_string(kGuardLifetime.count()));
    command.args.emplace_back(mode);
    for (const OwedInvalidation* owed : group) {
      command.args.push_back(owed->lifting);
    }
    commands.push_back(std::move(command));
  }
  return commands;
}

namespace {

std::vector<OwedInvalidation> keys_of(const RequestPlan& plan, std::string_view lifting) {
  std::vector<OwedInvalidation> keys;
  keys.reserve(plan.invalidate_keys.size());
  for (size_t i = 0; i < plan.invalidate_keys.size(); ++i) {
    keys.push_back({plan.invalidate_keys[i], plan.invalidate_guards[i], plan.invalidate_variants[i],
                    plan.invalidate_fences[i], std::string(lifting)});
  }
  return keys;
}

}  // namespace

std::string CacheStore::new_fence_token() { return std::string(kFenceTokenPrefix) + next_token(); }

RedisClient::Call* CacheStore::invalidate(const RequestPlan& plan, RedisWaiter& waiter,
                                          uint64_t tag, std::string_view lifting) {
  ++stats_.invalidations;
  return redis_.submit(invalidation_commands(keys_of(plan, lifting)), waiter, tag);
}

RedisClient::Call* CacheStore::fence(const RequestPlan& plan, RedisWaiter& waiter, uint64_t tag,
                                     std::string_view fence_token) {
  return redis_.submit(invalidation_commands(keys_of(plan, {}), fence_token), waiter, tag);
}

void CacheStore::drop_from_near_cache(const RequestPlan& plan) {
  if (near_ == nullptr) {
    return;
  }
  for (const std::string& guard : plan.invalidate_guards) {
    near_->invalidate_guard(guard);
  }
}

void CacheStore::owe_invalidation(const RequestPlan& plan, std::string_view why,
                                  std::string_view lifting) {
  drop_from_near_cache(plan);
  const bool named = journal_.record(plan, lifting);
  if (!named && near_ != nullptr) {
    // The epoch bump stands in for the keys, and this worker hears no message about its own.
    near_->clear();
  }
  if (named) {
    spdlog::warn(
        "cache invalidation not confirmed ({}): journaled {}; not served from Redis "
        "until replayed",
        why, named_keys(plan.invalidate_keys, kLoggedKeys));
  } else {
    spdlog::warn(
        "cache invalidation not confirmed ({}) for {}: the journal is full "
        "(cache.invalidation_journal.max_keys); the cache epoch will be bumped and "
        "nothing is served from Redis until it is",
        why, named_keys(plan.invalidate_keys, kLoggedKeys));
  }
  replay_->kick();
}

void CacheStore::owe_epoch_bump(const std::string& epoch_key, std::string_view why) {
  journal_.record_epoch_bump(epoch_key);
  if (near_ != nullptr) {
    near_->clear();
  }
  spdlog::warn("{}: the cache epoch will be bumped and nothing is served from Redis until it is",
               why);
  replay_->kick();
}

std::vector<RedisCommand> CacheStore::epoch_bump_commands(const std::string& epoch_key) const {
  std::vector<RedisCommand> commands;
  for (std::string& key : epoch_bump_keys(epoch_key, epoch_per_slot_)) {
    RedisCommand bump;
    bump.script = &kBumpEpochScript;
    bump.num_keys = 1;
    bump.args = {std::move(key)};
    commands.push_back(std::move(bump));
  }
  return commands;
}

void CacheStore::on_journal_emptied(std::function<void()> callback) {
  replay_->on_emptied(std::move(callback));
}

void CacheStore::stop() { replay_->stop(); }

void CacheStore::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  if ((tag & kTaggedFillBit) != 0) {
    auto found = tagged_fills_.find(tag);
    if (found != tagged_fills_.end()) {
      TaggedFill pending = std::move(found->second);
      tagged_fills_.erase(found);
      on_tags_recorded(std::move(pending), replies);
    }
    return;
  }
  if (replies.empty()) {
    ++stats_.fill_errors;
    return;
  }
  const redisReply* reply = replies.front().get();
  if (is_error(reply)) {
    ++stats_.fill_errors;
    if (!fills_failing_) {
      spdlog::warn("cache fill refused by Redis: {}; misses say BYPASS until a fill succeeds",
                   reply_text(reply));
    }
    fills_failing_ = true;
    return;
  }
  if (fills_failing_) {
    spdlog::info("cache fills succeed again");
  }
  fills_failing_ = false;
  if (reply_integer(reply) == 1) {
    ++stats_.fills;
  } else {
    ++stats_.fills_refused;
    spdlog::debug("cache fill skipped: the key was invalidated while the response was fetched");
  }
}

}  // namespace cachecar
