#include "cache/cache_store.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "cache/scripts.h"

namespace cachecar {
namespace {

constexpr uint64_t kFillTag = 1;

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

CacheStore::CacheStore(RedisClient& redis) : redis_(redis), token_prefix_(random_hex(8)) {}

void CacheStore::register_scripts(RedisClient& redis) {
  redis.register_script(&kFillScript);
  redis.register_script(&kInvalidateScript);
}

void CacheStore::fill(const RequestPlan& plan, const std::string& seen_guard, std::string value,
                      Duration ttl) {
  const int64_t seconds = std::max<int64_t>(1, ttl.count() / 1000);
  RedisCommand command;
  command.script = &kFillScript;
  if (plan.variants_key.empty()) {
    command.num_keys = 2;
    command.args = {plan.key, plan.guard_key, seen_guard, std::move(value),
                    std::to_string(seconds)};
  } else {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    command.num_keys = 3;
    command.args = {plan.key,         plan.guard_key,          plan.variants_key,     seen_guard,
                    std::move(value), std::to_string(seconds), std::to_string(now_ms)};
  }
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  if (redis_.submit(std::move(commands), *this, kFillTag) == nullptr) {
    ++stats_.fill_errors;
  }
}

RedisClient::Call* CacheStore::invalidate(const RequestPlan& plan, RedisWaiter& waiter,
                                          uint64_t tag) {
  RedisCommand command;
  command.script = &kInvalidateScript;
  command.num_keys = static_cast<int>(plan.invalidate_keys.size() * 3);
  command.args.reserve(plan.invalidate_keys.size() * 3 + 2);
  command.args.insert(command.args.end(), plan.invalidate_keys.begin(), plan.invalidate_keys.end());
  command.args.insert(command.args.end(), plan.invalidate_guards.begin(),
                      plan.invalidate_guards.end());
  command.args.insert(command.args.end(), plan.invalidate_variants.begin(),
                      plan.invalidate_variants.end());
  command.args.push_back(token_prefix_ + "-" + std::to_string(++token_counter_));
  command.args.push_back(std::to_string(kGuardLifetime.count()));
  ++stats_.invalidations;
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  return redis_.submit(std::move(commands), waiter, tag);
}

void CacheStore::on_redis_done(uint64_t /*tag*/, std::vector<RedisReplyPtr>& replies) {
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
