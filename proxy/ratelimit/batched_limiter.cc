#include "ratelimit/batched_limiter.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace cachecar {
namespace {

std::optional<SettleResult> read_settle(const redisReply* reply) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
    return std::nullopt;
  }
  const auto total = reply_integer(reply->element[0]);
  const auto ttl = reply_integer(reply->element[1]);
  const auto previous = reply_integer(reply->element[2]);
  if (!total || !ttl || !previous) {
    return std::nullopt;
  }
  return SettleResult{*total, *ttl, *previous};
}

RedisCommand settle_command(const Settlement& settlement) {
  RedisCommand command;
  command.script = &kSettleScript;
  command.args.push_back(settlement.key);
  if (!settlement.previous_key.empty()) {
    command.args.push_back(settlement.previous_key);
  }
  command.num_keys = static_cast<int>(command.args.size());
  command.args.push_back(std::to_string(settlement.count));
  command.args.push_back(std::to_string(settlement.expiry_ms));
  return command;
}

}  // namespace

BatchedLimiter::BatchedLimiter(uv_loop_t* loop, RedisClient& redis, WorkerMetrics& metrics)
    : loop_(loop), redis_(redis), metrics_(metrics), timer_(make_timer(loop, this)) {}

BatchedLimiter::~BatchedLimiter() {
  if (call_ != nullptr) {
    redis_.cancel(call_);
  }
}

void BatchedLimiter::stop() {
  timer_.reset();
  if (call_ != nullptr) {
    redis_.cancel(call_);
    call_ = nullptr;
  }
}

int64_t BatchedLimiter::now_ms() const { return static_cast<int64_t>(uv_now(loop_)); }

LocalVerdict BatchedLimiter::decide(const LimitPlan& plan, const Config::RateLimit& config) {
  interval_ms_ = static_cast<uint64_t>(config.sync_interval.count());
  const LocalVerdict verdict = counts_.decide(plan, config.local_budget, now_ms());
  switch (verdict.kind) {
    case LocalVerdict::Kind::Allowed:
      metrics_.rate_limit_local_allowed.add();
      arm();
      break;
    case LocalVerdict::Kind::Denied:
      metrics_.rate_limit_local_denied.add();
      break;
    case LocalVerdict::Kind::AskRedis:
      break;
  }
  return verdict;
}

void BatchedLimiter::learn(const LimitPlan& plan, LimitCounts counts, int64_t asked_ms) {
  account(counts_.learn(plan, counts, asked_ms));
  metrics_.rate_limit_tracked_clients.set(counts_.size());
}

void BatchedLimiter::arm() {
  if (!timer_ || uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get()))) {
    return;
  }
  // The first tick waits a whole interval too: that wait is what coalesces a client's
  // requests into one INCRBY.
  uv_timer_start(
      timer_.get(), [](uv_timer_t* timer) { owner_of<BatchedLimiter>(timer)->on_tick(); },
      interval_ms_, interval_ms_);
}

void BatchedLimiter::on_tick() {
  uv_timer_set_repeat(timer_.get(), interval_ms_);  // a reload's interval from the next tick
  const int64_t now = now_ms();
  account(counts_.sweep(now));
  if (call_ != nullptr) {
    return;  // one settlement call at a time; what is owed meanwhile waits for the next tick
  }
  CountMoves moves;
  sent_ = counts_.take_settlements(kMaxSettlementsPerCall, now, moves);
  account(moves);
  metrics_.rate_limit_tracked_clients.set(counts_.size());
  if (sent_.empty()) {
    if (!counts_.has_due()) {
      uv_timer_stop(timer_.get());  // nothing owed: no tick until the next local admission
    }
    return;
  }
  std::vector<RedisCommand> commands;
  commands.reserve(sent_.size());
  for (const Settlement& settlement : sent_) {
    commands.push_back(settle_command(settlement));
  }
  sent_ms_ = now;
  metrics_.rate_limit_settles.add(sent_.size());
  call_ = redis_.submit(std::move(commands), *this, 0);
  if (call_ == nullptr) {
    std::vector<RedisReplyPtr> none;
    on_redis_done(0, none);  // Redis is known down: the counts wait for a later tick
  }
}

void BatchedLimiter::on_redis_done(uint64_t /*tag*/, std::vector<RedisReplyPtr>& replies) {
  call_ = nullptr;
  size_t failed = 0;
  std::string problem;
  for (size_t i = 0; i < sent_.size(); ++i) {
    const redisReply* reply = i < replies.size() ? replies[i].get() : nullptr;
    std::optional<SettleResult> result = read_settle(reply);
    if (!result) {
      ++failed;
      if (reply != nullptr && problem.empty()) {
        problem = is_error(reply) ? std::string(reply_text(reply)) : "wrong shape";
      }
    }
    account(counts_.settled(sent_[i], result, sent_ms_));
  }
  metrics_.rate_limit_settle_failures.add(failed);
  if (failed == 0) {
    logged_failure_ = false;
  } else if (!problem.empty() && !logged_failure_) {
    // An unanswered call is the Redis client's to report; an answer that refuses is ours.
    logged_failure_ = true;
    spdlog::warn("rate limiter: Redis refused {} settlement(s) ({}); retrying every {} ms",
                 failed, problem, interval_ms_);
  }
  sent_.clear();
}

void BatchedLimiter::account(const CountMoves& moves) {
  metrics_.rate_limit_counts_confirmed.add(static_cast<uint64_t>(moves.confirmed));
  if (moves.dropped > 0) {
    metrics_.rate_limit_counts_dropped.add(static_cast<uint64_t>(moves.dropped));
    spdlog::debug("rate limiter: dropped {} unsettled count(s) of ended windows", moves.dropped);
  }
}

}  // namespace cachecar
