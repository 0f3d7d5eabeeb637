// ratelimit/local_counts.h: rate_limit.sync: batched's policy. A worker decides from the total
// Redis last reported plus what it admitted since, within its budget, and settles later. The
// clock is a value, so windows end without sleeping.

#include "ratelimit/local_counts.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

namespace cachecar {
namespace {

using Kind = LocalVerdict::Kind;

constexpr int64_t kWindowMs = 60'000;

LimitPlan fixed_plan(int64_t limit, std::string key = "rl:global:192.0.2.1") {
  LimitPlan plan;
  plan.limit = limit;
  plan.window = Duration(kWindowMs);
  plan.key = std::move(key);
  return plan;
}

LimitPlan sliding_plan(int64_t limit, int64_t elapsed_ms) {
  LimitPlan plan = fixed_plan(limit, "rl:global:192.0.2.1:7");
  plan.algorithm = RateLimitAlgorithm::SlidingWindow;
  plan.previous_key = "rl:global:192.0.2.1:6";
  plan.elapsed_ms = elapsed_ms;
  return plan;
}

const char* name(Kind kind) {
  switch (kind) {
    case Kind::AskRedis:
      return "AskRedis";
    case Kind::Allowed:
      return "Allowed";
    case Kind::Denied:
      return "Denied";
  }
  return "?";
}

struct Step {
  Kind kind;
  int64_t remaining;  // Allowed and Denied
  int64_t reset_seconds;
};

// Runs `steps` decisions at `now_ms` and compares each.
void expect_steps(LocalCounts& counts, const LimitPlan& plan, int64_t budget, int64_t now_ms,
                  const std::vector<Step>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    CAPTURE(i);
    const LocalVerdict verdict = counts.decide(plan, budget, now_ms);
    CHECK(std::string(name(verdict.kind)) == name(steps[i].kind));
    if (verdict.kind != Kind::AskRedis) {
      CHECK(verdict.decision.allowed == (verdict.kind == Kind::Allowed));
      CHECK(verdict.decision.limit == plan.limit);
      CHECK(verdict.decision.remaining == steps[i].remaining);
      CHECK(verdict.decision.reset_seconds == steps[i].reset_seconds);
    }
  }
}

TEST_CASE("LocalCounts: an unknown client asks Redis, then is decided locally from the seed") {
  struct Case {
    const char* name;
    int64_t limit;
    int64_t budget;
    LimitCounts seed;  // {count, ms left}
    std::vector<Step> steps;
  };
  const Case cases[] = {
      {"under the limit, then over it and remembered",
       5,
       10,
       {1, 30'000},
       {{Kind::Allowed, 3, 30},
        {Kind::Allowed, 2, 30},
        {Kind::Allowed, 1, 30},
        {Kind::Allowed, 0, 30},
        {Kind::Denied, 0, 30},
        {Kind::Denied, 0, 30}}},
      {"the budget sends the next request to Redis",
       100,
       2,
       {10, 59'001},
       {{Kind::Allowed, 89, 60}, {Kind::Allowed, 88, 60}, {Kind::AskRedis, 0, 0}}},
      {"Redis said no: refused until the window ends",
       3,
       10,
       {4, 12'500},
       {{Kind::Denied, 0, 13}, {Kind::Denied, 0, 13}}},
      {"exactly at the limit after the seed", 1, 10, {1, 1'000}, {{Kind::Denied, 0, 1}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    LocalCounts counts(16);
    const LimitPlan plan = fixed_plan(c.limit);
    CHECK(counts.decide(plan, c.budget, 1'000).kind == Kind::AskRedis);
    counts.learn(plan, c.seed, 1'000);
    expect_steps(counts, plan, c.budget, 1'000, c.steps);
  }
}

TEST_CASE("LocalCounts: a fixed window's end makes the next request ask Redis again") {
  LocalCounts counts(16);
  const LimitPlan plan = fixed_plan(2);
  counts.learn(plan, {2, 10'000}, 0);
  CHECK(counts.decide(plan, 10, 9'999).kind == Kind::Denied);
  CHECK(counts.decide(plan, 10, 10'000).kind == Kind::AskRedis);
  // The new window's seed replaces the old state: the client is under its limit again.
  counts.learn(plan, {1, kWindowMs}, 10'000);
  expect_steps(counts, plan, 10, 10'001, {{Kind::Allowed, 0, 60}, {Kind::Denied, 0, 60}});
}

TEST_CASE("LocalCounts: admitted requests are settled in one coalesced count per client") {
  LocalCounts counts(16);
  const LimitPlan a = fixed_plan(100, "rl:global:a");
  const LimitPlan b = fixed_plan(100, "rl:global:b");
  counts.learn(a, {1, kWindowMs}, 0);
  counts.learn(b, {7, kWindowMs}, 0);
  for (int i = 0; i < 3; ++i) {
    CHECK(counts.decide(a, 10, 5).kind == Kind::Allowed);
  }
  CHECK(counts.decide(b, 10, 5).kind == Kind::Allowed);
  CHECK(counts.has_due());
  CountMoves moves;
  std::vector<Settlement> due = counts.take_settlements(100, 10, moves);
  REQUIRE(due.size() == 2);
  CHECK(due[0].key == "rl:global:a");
  CHECK(due[0].count == 3);
  CHECK(due[0].previous_key.empty());
  CHECK(due[0].expiry_ms == kWindowMs);
  CHECK(due[1].key == "rl:global:b");
  CHECK(due[1].count == 1);
  CHECK_FALSE(counts.has_due());
  CHECK(counts.take_settlements(100, 11, moves).empty());
  // Another replica counted 20 meanwhile: the reply's total carries it.
  CHECK(counts.settled(due[0], SettleResult{24, kWindowMs - 10, 0}, 10).confirmed == 3);
  CHECK(counts.settled(due[1], SettleResult{8, kWindowMs - 10, 0}, 10).confirmed == 1);
  expect_steps(counts, a, 10, 20, {{Kind::Allowed, 75, 60}});
}

TEST_CASE("LocalCounts: one settlement per client at a time, at most max clients per call") {
  LocalCounts counts(16);
  const LimitPlan a = fixed_plan(100, "rl:global:a");
  const LimitPlan b = fixed_plan(100, "rl:global:b");
  counts.learn(a, {1, kWindowMs}, 0);
  counts.learn(b, {1, kWindowMs}, 0);
  counts.decide(a, 10, 1);
  counts.decide(b, 10, 1);
  CountMoves moves;
  std::vector<Settlement> first = counts.take_settlements(1, 2, moves);
  REQUIRE(first.size() == 1);
  CHECK(first[0].key == "rl:global:a");
  counts.decide(a, 10, 3);  // a has one in flight: its new count waits
  std::vector<Settlement> second = counts.take_settlements(10, 4, moves);
  REQUIRE(second.size() == 1);
  CHECK(second[0].key == "rl:global:b");
  counts.settled(first[0], SettleResult{2, 50'000, 0}, 2);
  std::vector<Settlement> third = counts.take_settlements(10, 5, moves);
  REQUIRE(third.size() == 1);
  CHECK(third[0].key == "rl:global:a");
  CHECK(third[0].count == 1);
}

TEST_CASE("LocalCounts: a failed settlement is sent again, an ended window's count dropped") {
  struct Case {
    const char* name;
    std::optional<SettleResult> result;
    int64_t take_again_at;
    int64_t confirmed;
    int64_t dropped;
    int64_t count_sent_again;  // 0: nothing due
  };
  const Case cases[] = {
      {"unanswered, window still open", std::nullopt, 100, 0, 0, 2},
      {"unanswered, window over by the retry", std::nullopt, 60'000, 0, 2, 0},
      {"the counter is gone", SettleResult{-1, -2, 0}, 100, 0, 2, 0},
      {"confirmed", SettleResult{3, 50'000, 0}, 100, 2, 0, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    LocalCounts counts(16);
    const LimitPlan plan = fixed_plan(100);
    counts.learn(plan, {1, kWindowMs}, 0);
    counts.decide(plan, 10, 1);
    counts.decide(plan, 10, 1);
    CountMoves moves;
    std::vector<Settlement> due = counts.take_settlements(10, 10, moves);
    REQUIRE(due.size() == 1);
    const CountMoves first = counts.settled(due[0], c.result, 10);
    std::vector<Settlement> again = counts.take_settlements(10, c.take_again_at, moves);
    CHECK(first.confirmed + moves.confirmed == c.confirmed);
    CHECK(first.dropped + moves.dropped == c.dropped);
    if (c.count_sent_again == 0) {
      CHECK(again.empty());
    } else {
      REQUIRE(again.size() == 1);
      CHECK(again[0].count == c.count_sent_again);
    }
  }
  // A gone counter ends the entry's window: the next request seeds a new one.
  LocalCounts counts(16);
  const LimitPlan plan = fixed_plan(100);
  counts.learn(plan, {1, kWindowMs}, 0);
  counts.decide(plan, 10, 1);
  CountMoves moves;
  counts.settled(counts.take_settlements(10, 10, moves).at(0), SettleResult{-1, -2, 0}, 10);
  CHECK(counts.decide(plan, 10, 11).kind == Kind::AskRedis);
}

TEST_CASE("LocalCounts: Redis's answer during a settlement does not count it twice") {
  LocalCounts counts(16);
  const LimitPlan plan = fixed_plan(10);
  counts.learn(plan, {1, kWindowMs}, 0);
  for (int i = 0; i < 3; ++i) {
    counts.decide(plan, 3, 1);
  }
  CHECK(counts.decide(plan, 3, 1).kind == Kind::AskRedis);  // budget of 3 used
  CountMoves moves;
  std::vector<Settlement> due = counts.take_settlements(10, 2, moves);
  REQUIRE(due.size() == 1);
  // That request's own count, after the settlement's 3: 1 + 3 + 1.
  counts.learn(plan, {5, kWindowMs - 3}, 1);
  // True count 5; the next is the 6th (the settlement is still in flight).
  expect_steps(counts, plan, 3, 3, {{Kind::AskRedis, 0, 0}});
  counts.settled(due[0], SettleResult{5, kWindowMs - 3, 0}, 2);
  expect_steps(counts, plan, 10, 3, {{Kind::Allowed, 4, 60}, {Kind::Allowed, 3, 60}});
}

TEST_CASE("LocalCounts: a sliding window weighs the previous count and refuses until it decays") {
  LocalCounts counts(16);
  // Half the window gone; the previous window counted 10 (weighs 5), this one 2.
  const LimitPlan plan = sliding_plan(10, kWindowMs / 2);
  CHECK(counts.decide(plan, 10, 0).kind == Kind::AskRedis);
  counts.learn(plan, {2, 10}, 0);
  expect_steps(counts, plan, 10, 0,
               {{Kind::Allowed, 2, 30}, {Kind::Allowed, 1, 30}, {Kind::Allowed, 0, 30}});
  // The next would make 5 + 6 = 11: refused until the previous window weighs 4, a tenth of
  // the window on: 6 s. (Redis, which counts the refused request too, would say 12.)
  const LocalVerdict over = counts.decide(plan, 10, 0);
  CHECK(std::string(name(over.kind)) == "Denied");
  CHECK(over.decision.reset_seconds == 6);
  CHECK(counts.decide(plan, 10, 5'999).kind == Kind::Denied);
  // Later, the estimate decides again, here still over (the plan says half the window).
  CHECK(counts.decide(plan, 10, 6'000).kind == Kind::Denied);
  // A settlement reads the previous count back with the total.
  CountMoves moves;
  std::vector<Settlement> due = counts.take_settlements(10, 6'000, moves);
  REQUIRE(due.size() == 1);
  CHECK(due[0].previous_key == "rl:global:192.0.2.1:6");
  CHECK(due[0].expiry_ms == 2 * kWindowMs);
  CHECK(due[0].count == 3);
  // The window's end (30 s after the seed) hands the next request to Redis.
  CHECK(counts.decide(plan, 10, 30'000).kind == Kind::AskRedis);
}

TEST_CASE("LocalCounts: a full table limits new clients exactly until expired ones are swept") {
  LocalCounts counts(1);
  const LimitPlan a = fixed_plan(10, "rl:global:a");
  const LimitPlan b = fixed_plan(10, "rl:global:b");
  counts.learn(a, {1, 1'000}, 0);
  counts.learn(b, {1, kWindowMs}, 0);  // no room: not tracked
  CHECK(counts.size() == 1);
  CHECK(counts.decide(b, 10, 1).kind == Kind::AskRedis);
  counts.decide(a, 10, 1);  // an unsettled count that will expire with a's window
  // a's window is over: the sweep makes room (and drops a's unsettled count).
  CHECK(counts.sweep(2'000).dropped == 1);
  CHECK(counts.size() == 0);
  counts.learn(b, {1, kWindowMs}, 2'000);
  CHECK(counts.decide(b, 10, 2'001).kind == Kind::Allowed);
  // Sweeps walk the table at most once per interval.
  counts.learn(a, {1, 10}, 2'002);
  CHECK(counts.size() == 1);  // no room, and no sweep yet
  CHECK(counts.sweep(2'500).dropped == 0);
  CHECK(counts.size() == 1);
}

TEST_CASE("LocalCounts: a settlement from an ended window does not touch the new one") {
  LocalCounts counts(16);
  const LimitPlan plan = fixed_plan(5);
  counts.learn(plan, {1, 1'000}, 0);
  counts.decide(plan, 10, 1);
  CountMoves moves;
  std::vector<Settlement> due = counts.take_settlements(10, 2, moves);
  REQUIRE(due.size() == 1);
  counts.learn(plan, {1, kWindowMs}, 1'000);  // a new window, seeded while due[0] is out
  CHECK(counts.settled(due[0], SettleResult{5, 10, 0}, 2).confirmed == 1);
  expect_steps(counts, plan, 10, 1'001, {{Kind::Allowed, 3, 60}});
}

}  // namespace
}  // namespace cachecar
