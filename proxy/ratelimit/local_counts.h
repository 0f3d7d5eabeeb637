#pragma once
// rate_limit.sync: batched (issue 14), the policy: one worker's knowledge of its clients'
// counters. For each counter key (rl:<scope>:<client>, plus the window index when sliding):
// the total Redis last reported, what this worker admitted since and has not settled, and
// until when the client is refused. Pure: the clock is passed in (`now_ms`, monotonic
// milliseconds) and replies are values; ratelimit/batched_limiter.h does the I/O.
//
// A request is decided here, with no Redis command, once the worker knows the client's
// current window. The first request of a window, or of a client not tracked, asks Redis as
// exact mode does, and its answer (learn) seeds the entry. Local admissions are settled
// later, coalesced into one INCRBY per client (take_settlements, then settled).
//
// Invariants, per entry:
//  - total + in_flight + unsettled is a lower bound of the window's true count, so a local
//    refusal is right. (One exception errs toward limiting: a settlement that failed after
//    Redis applied it is sent again, and so counted twice.)
//  - in_flight + unsettled <= the budget: a worker admits at most rate_limit.local_budget
//    requests per client that Redis has not confirmed. The worst-case overshoot of a fleet is
//    then replicas x workers x budget per window (derivation in README, "Batched counting").

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ratelimit/limiter.h"

namespace cachecar {

struct LocalVerdict {
  enum class Kind {
    AskRedis,  // count this request in Redis, in the request's batch (exact mode's path)
    Allowed,   // admitted here and counted for the next settlement
    Denied,    // over the limit: 429, no Redis command
  };
  Kind kind = Kind::AskRedis;
  LimitDecision decision;  // Allowed and Denied: what the RateLimit-* fields say
};

// One client's coalesced count, on its way to Redis (kSettleScript).
struct Settlement {
  std::string key;
  std::string previous_key;  // sliding: read back with the total; empty for a fixed window
  int64_t count = 0;
  int64_t expiry_ms = 0;  // for a counter that has none (the exact scripts' expiry)
  uint64_t generation = 0;  // the entry's window when taken; a reply for an older one is stale
};

// kSettleScript's reply. total < 0: the counter was gone and nothing was added.
struct SettleResult {
  int64_t total = 0;
  int64_t ttl_ms = 0;
  int64_t previous = 0;
};

// What happened to counts, for the metrics.
struct CountMoves {
  int64_t confirmed = 0;  // Redis added them
  int64_t dropped = 0;    // their window ended before Redis had them: lost, and harmless
};

class LocalCounts {
 public:
  // Requires: max_clients > 0.
  explicit LocalCounts(size_t max_clients);

  // Decides `plan`'s request, counting it when it is admitted here. `budget` is
  // rate_limit.local_budget.
  LocalVerdict decide(const LimitPlan& plan, int64_t budget, int64_t now_ms);
  // Redis's answer to a request that asked it (AskRedis), asked at `asked_ms`: seeds or
  // refreshes the entry. Returns the counts of an ended window that it dropped.
  CountMoves learn(const LimitPlan& plan, LimitCounts counts, int64_t asked_ms);

  // The counts due to Redis, at most `max` clients, now in flight; counts whose counter has
  // expired are dropped instead (added to `moves`).
  std::vector<Settlement> take_settlements(size_t max, int64_t now_ms, CountMoves& moves);
  // The answer to a settlement sent at `sent_ms`; nullopt when the call failed, so its count
  // is sent again with the next one.
  CountMoves settled(const Settlement& settlement, std::optional<SettleResult> result,
                     int64_t sent_ms);
  // Something is waiting for take_settlements.
  bool has_due() const { return !due_.empty(); }

  // Forgets clients whose counter has expired, at most once per kSweepIntervalMs (each sweep
  // walks the whole table). Returns the unsettled counts it dropped.
  CountMoves sweep(int64_t now_ms);
  size_t size() const { return entries_.size(); }

  static constexpr int64_t kSweepIntervalMs = 1'000;

 private:
  struct Entry {
    int64_t window_ms = 0;
    bool sliding = false;
    std::string previous_key;
    int64_t total = 0;            // the window's count as Redis last reported it
    int64_t previous = 0;         // sliding: the previous window's count, as last reported
    int64_t unsettled = 0;        // admitted here, not yet sent
    int64_t in_flight = 0;        // sent, not yet answered
    int64_t window_end_ms = 0;    // local decisions stop: the next window begins with Redis
    int64_t expires_ms = 0;       // the counter is gone from Redis by then
    int64_t denied_until_ms = 0;  // refused without asking until then
    uint64_t generation = 0;      // bumped when the entry starts a new window
    bool due = false;             // listed in due_
  };

  Entry* find(const std::string& key);
  Entry* find_or_add(const std::string& key, int64_t now_ms);
  void mark_due(const std::string& key, Entry& entry);
  LimitDecision refusal(const LimitPlan& plan, const Entry& entry, int64_t now_ms) const;

  size_t max_clients_;
  std::unordered_map<std::string, Entry> entries_;
  // Keys with unsettled counts, oldest first. May name forgotten keys, which are skipped.
  std::vector<std::string> due_;
  std::optional<int64_t> last_sweep_ms_;
  uint64_t next_generation_ = 1;
};

}  // namespace cachecar
