#include "ratelimit/local_counts.h"

#include <algorithm>
#include <utility>

namespace cachecar {
namespace {

// As limiter.cc: anyone with access to Redis can write a counter, so an absurd value must
// limit, never overflow the sums below.
constexpr int64_t kMaxCount = int64_t{1} << 31;

int64_t clamp_count(int64_t value) { return std::clamp<int64_t>(value, 0, kMaxCount); }

int64_t ceil_seconds(int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

}  // namespace

LocalCounts::LocalCounts(size_t max_clients) : max_clients_(max_clients) {}

LocalCounts::Entry* LocalCounts::find(const std::string& key) {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

LocalCounts::Entry* LocalCounts::find_or_add(const std::string& key, int64_t now_ms) {
  if (Entry* entry = find(key)) {
    return entry;
  }
  if (entries_.size() >= max_clients_) {
    sweep(now_ms);
    if (entries_.size() >= max_clients_) {
      // Every tracked client still has a live window: evicting one would lose its count.
      // This client is limited exactly instead, at the cost of a Redis command per request.
      return nullptr;
    }
  }
  return &entries_[key];
}

void LocalCounts::mark_due(const std::string& key, Entry& entry) {
  if (!entry.due) {
    entry.due = true;
    due_.push_back(key);
  }
}

LimitDecision LocalCounts::refusal(const LimitPlan& plan, const Entry& entry,
                                   int64_t now_ms) const {
  LimitDecision decision;
  decision.allowed = false;
  decision.limit = plan.limit;
  decision.remaining = 0;
  decision.reset_seconds = ceil_seconds(entry.denied_until_ms - now_ms);
  return decision;
}

LocalVerdict LocalCounts::decide(const LimitPlan& plan, int64_t budget, int64_t now_ms) {
  LocalVerdict verdict;
  Entry* entry = find(plan.key);
  if (entry == nullptr || now_ms >= entry->window_end_ms) {
    return verdict;  // nothing known of this window: Redis counts it and seeds the entry
  }
  // The limit is the plan's, not the entry's: a reload may change it, not the counter.
  if (now_ms < entry->denied_until_ms) {
    verdict.kind = LocalVerdict::Kind::Denied;
    verdict.decision = refusal(plan, *entry, now_ms);
    return verdict;
  }
  const int64_t pending = entry->unsettled + entry->in_flight;
  LimitCounts counts;
  counts.first = entry->total + pending + 1;  // as if this request were counted
  counts.second = entry->sliding ? entry->previous : entry->window_end_ms - now_ms;
  LimitDecision decision = decide_counts(plan, counts);
  if (!decision.allowed) {
    // Counts only grow within a window, so a fixed window stays over until it ends. A sliding
    // estimate falls as the previous window's weight decays; unlike in Redis, this refused
    // request is not counted, so the wait is reckoned from the count without it.
    entry->denied_until_ms =
        entry->sliding
            ? std::min(entry->window_end_ms,
                       now_ms + sliding_wait_ms(plan, counts.first - 1, entry->previous))
            : entry->window_end_ms;
    verdict.kind = LocalVerdict::Kind::Denied;
    verdict.decision = refusal(plan, *entry, now_ms);
    return verdict;
  }
  if (pending >= budget) {
    return verdict;  // this worker's share of unconfirmed admissions is used up: ask Redis
  }
  ++entry->unsettled;
  mark_due(plan.key, *entry);
  verdict.kind = LocalVerdict::Kind::Allowed;
  verdict.decision = decision;
  return verdict;
}

CountMoves LocalCounts::learn(const LimitPlan& plan, LimitCounts counts, int64_t asked_ms) {
  CountMoves moves;
  Entry* entry = find_or_add(plan.key, asked_ms);
  if (entry == nullptr) {
    return moves;
  }
  const int64_t window_ms = plan.window.count();
  const bool sliding = plan.algorithm == RateLimitAlgorithm::SlidingWindow;
  // Measured from when the request asked, which is no later than when Redis counted it: the
  // entry's window never outlasts Redis's, so no refusal spills into the next window.
  const int64_t window_end =
      sliding ? asked_ms + (window_ms - std::clamp<int64_t>(plan.elapsed_ms, 0, window_ms))
              : asked_ms + std::clamp<int64_t>(counts.second, 0, window_ms);
  // A fixed window's counter keeps its key across windows; an end half a window past the one
  // known is a new window (two readings of one window differ by a round trip at most).
  const bool new_window = asked_ms >= entry->window_end_ms ||
                          window_end > entry->window_end_ms + window_ms / 2;
  if (new_window) {
    // Unsettled counts belong to the window that ended; one in flight still reports back,
    // but as a stale generation.
    moves.dropped = entry->unsettled;
    *entry = Entry{};
    entry->generation = next_generation_++;
    entry->window_end_ms = window_end;
  } else {
    entry->window_end_ms = std::max(entry->window_end_ms, window_end);
  }
  entry->window_ms = window_ms;
  entry->sliding = sliding;
  entry->previous_key = plan.previous_key;
  entry->expires_ms = sliding ? entry->window_end_ms + window_ms : entry->window_end_ms;
  // A settlement in flight may be in Redis's total already: leaving it out keeps the sum a
  // lower bound (counting it twice could refuse a client under its limit).
  entry->total = std::max(entry->total, clamp_count(counts.first) - entry->in_flight);
  if (sliding) {
    entry->previous = std::max(entry->previous, clamp_count(counts.second));
  }
  const LimitDecision decision = decide_counts(plan, counts);
  if (!decision.allowed) {
    // Redis's own "no" is exact: remember it, so the next requests are refused here.
    entry->denied_until_ms =
        std::min(entry->window_end_ms,
                 sliding ? asked_ms + decision.reset_seconds * 1000 : entry->window_end_ms);
  }
  return moves;
}

std::vector<Settlement> LocalCounts::take_settlements(size_t max, int64_t now_ms,
                                                      CountMoves& moves) {
  std::vector<Settlement> out;
  std::vector<std::string> still_due;
  for (std::string& key : due_) {
    Entry* entry = find(key);
    if (entry == nullptr || !entry->due) {
      continue;  // forgotten, or listed twice after being forgotten and seen again
    }
    if (entry->in_flight > 0 || out.size() >= max) {
      still_due.push_back(std::move(key));  // one settlement per client at a time
      continue;
    }
    entry->due = false;
    if (entry->unsettled == 0) {
      continue;
    }
    if (now_ms >= entry->expires_ms) {
      moves.dropped += std::exchange(entry->unsettled, 0);
      continue;
    }
    Settlement settlement;
    settlement.key = key;
    settlement.previous_key = entry->sliding ? entry->previous_key : std::string();
    settlement.count = entry->unsettled;
    settlement.expiry_ms = entry->sliding ? 2 * entry->window_ms : entry->window_ms;
    settlement.generation = entry->generation;
    entry->in_flight = std::exchange(entry->unsettled, 0);
    out.push_back(std::move(settlement));
  }
  due_ = std::move(still_due);
  return out;
}

CountMoves LocalCounts::settled(const Settlement& settlement, std::optional<SettleResult> result,
                                int64_t sent_ms) {
  CountMoves moves;
  Entry* entry = find(settlement.key);
  if (entry == nullptr || entry->generation != settlement.generation) {
    // The entry has moved on to a new window (or was forgotten): the count is history.
    if (result && result->total >= 0) {
      moves.confirmed = settlement.count;
    } else {
      moves.dropped = settlement.count;
    }
    return moves;
  }
  entry->in_flight = 0;
  if (!result) {
    // Redis may or may not have applied it: sending it again may count it twice, which limits
    // a little early rather than letting a lost count through.
    entry->unsettled += settlement.count;
    mark_due(settlement.key, *entry);
    return moves;
  }
  if (result->total < 0) {
    // The counter is gone (its window ended, or Redis lost it): the next request asks Redis.
    moves.dropped = settlement.count + std::exchange(entry->unsettled, 0);
    entry->window_end_ms = std::min(entry->window_end_ms, sent_ms);
    entry->expires_ms = std::min(entry->expires_ms, sent_ms);
    entry->denied_until_ms = 0;
    return moves;
  }
  moves.confirmed = settlement.count;
  entry->total = std::max(entry->total, clamp_count(result->total));
  if (entry->sliding) {
    entry->previous = std::max(entry->previous, clamp_count(result->previous));
    entry->expires_ms = sent_ms + std::max<int64_t>(0, result->ttl_ms);
  } else {
    const int64_t end = sent_ms + std::clamp<int64_t>(result->ttl_ms, 0, entry->window_ms);
    entry->window_end_ms = std::max(entry->window_end_ms, end);
    entry->expires_ms = entry->window_end_ms;
  }
  return moves;
}

CountMoves LocalCounts::sweep(int64_t now_ms) {
  CountMoves moves;
  if (last_sweep_ms_ && now_ms - *last_sweep_ms_ < kSweepIntervalMs) {
    return moves;
  }
  last_sweep_ms_ = now_ms;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& entry = it->second;
    if (now_ms >= entry.expires_ms && entry.in_flight == 0) {
      moves.dropped += entry.unsettled;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return moves;
}

}  // namespace cachecar
