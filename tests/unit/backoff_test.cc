// redis/backoff.h: reconnect delays, capped exponential growth with equal jitter.

#include "redis/backoff.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace cachecar {
namespace {

using std::chrono::milliseconds;

// Random draws across [0, 1), both ends included.
const double kDraws[] = {0.0, 1e-9, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999, std::nextafter(1.0, 0.0)};

const uint32_t kHugeAttempts[] = {
    21,
    31,
    32,
    63,
    64,
    65,
    1'000,
    1u << 20,
    1u << 31,
    std::numeric_limits<uint32_t>::max() - 1,
    std::numeric_limits<uint32_t>::max(),
};

TEST_CASE("backoff_delay doubles from the initial delay up to the cap") {
  const BackoffPolicy policy;  // 100ms, capped at 5s
  struct Case {
    uint32_t attempt;
    int64_t full_ms;
  };
  const Case cases[] = {
      {0, 100},   {1, 200},   {2, 400},   {3, 800},    {4, 1'600},  {5, 3'200},
      {6, 5'000}, {7, 5'000}, {8, 5'000}, {20, 5'000}, {21, 5'000}, {100, 5'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.attempt);
    // The lowest draw gives half the delay, the middle one three quarters, the highest all of it
    // but for rounding.
    CHECK(backoff_delay(policy, c.attempt, 0.0).count() == c.full_ms / 2);
    CHECK(backoff_delay(policy, c.attempt, 0.5).count() == c.full_ms / 2 + c.full_ms / 4);
    const int64_t highest = backoff_delay(policy, c.attempt, std::nextafter(1.0, 0.0)).count();
    CHECK(highest >= c.full_ms - 1);
    CHECK(highest <= c.full_ms);
  }
}

TEST_CASE("backoff_delay with other policies") {
  struct Case {
    BackoffPolicy policy;
    uint32_t attempt;
    int64_t full_ms;
  };
  const Case cases[] = {
      {{milliseconds(10), milliseconds(1'000)}, 0, 10},
      {{milliseconds(10), milliseconds(1'000)}, 3, 80},
      {{milliseconds(10), milliseconds(1'000)}, 6, 640},
      {{milliseconds(10), milliseconds(1'000)}, 7, 1'000},
      // No growth when the cap is the initial delay, nor when it is below it.
      {{milliseconds(250), milliseconds(250)}, 0, 250},
      {{milliseconds(250), milliseconds(250)}, 9, 250},
      {{milliseconds(1'000), milliseconds(500)}, 0, 500},
      {{milliseconds(1'000), milliseconds(500)}, 4, 500},
      // A cap the doubling reaches only late.
      {{milliseconds(1), milliseconds(60'000)}, 15, 32'768},
      {{milliseconds(1), milliseconds(60'000)}, 16, 60'000},
      {{milliseconds(100), milliseconds(86'400'000)}, 19, 100LL << 19},
      {{milliseconds(100), milliseconds(86'400'000)}, 20, 86'400'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.policy.initial.count());
    CAPTURE(c.policy.cap.count());
    CAPTURE(c.attempt);
    CHECK(backoff_delay(c.policy, c.attempt, 0.0).count() == c.full_ms / 2);
    const int64_t highest = backoff_delay(c.policy, c.attempt, std::nextafter(1.0, 0.0)).count();
    CHECK(highest >= c.full_ms - 1);
    CHECK(highest <= c.full_ms);
  }
}

TEST_CASE("backoff_delay stays within half and all of the delay, and grows with attempts") {
  const BackoffPolicy policies[] = {
      {},
      {milliseconds(2), milliseconds(1'000)},
      {milliseconds(10), milliseconds(10)},
      {milliseconds(1'000), milliseconds(500)},
      {milliseconds(100), milliseconds(86'400'000)},
  };
  for (const BackoffPolicy& policy : policies) {
    CAPTURE(policy.initial.count());
    CAPTURE(policy.cap.count());
    for (double draw : kDraws) {
      CAPTURE(draw);
      int64_t previous = 0;
      for (uint32_t attempt = 0; attempt < 70; ++attempt) {
        CAPTURE(attempt);
        const int64_t full = attempt >= 40 ? policy.cap.count()
                                           : std::min<int64_t>(policy.initial.count() << attempt,
                                                               policy.cap.count());
        const int64_t delay = backoff_delay(policy, attempt, draw).count();
        CHECK(delay >= full / 2);
        CHECK(delay <= full);
        CHECK(delay > 0);
        CHECK(delay >= previous);
        previous = delay;
      }
    }
  }
}

TEST_CASE("backoff_delay: huge attempt numbers stay at the cap") {
  const BackoffPolicy policies[] = {
      {},
      {milliseconds(1), milliseconds(60'000)},
      {milliseconds(3'600'000), milliseconds(86'400'000)},
  };
  for (const BackoffPolicy& policy : policies) {
    CAPTURE(policy.initial.count());
    CAPTURE(policy.cap.count());
    const int64_t cap = policy.cap.count();
    for (uint32_t attempt : kHugeAttempts) {
      CAPTURE(attempt);
      for (double draw : kDraws) {
        CAPTURE(draw);
        const int64_t delay = backoff_delay(policy, attempt, draw).count();
        CHECK(delay >= cap / 2);
        CHECK(delay <= cap);
      }
      CHECK(backoff_delay(policy, attempt, 0.0).count() == cap / 2);
    }
  }
}

// backoff.h: "never zero, so a flapping Redis is not hammered".
TEST_CASE("backoff_delay is never zero, even with a 1 ms initial delay") {
  const BackoffPolicy policies[] = {
      {milliseconds(1), milliseconds(1'000)},
      {milliseconds(1), milliseconds(1)},
      {milliseconds(3), milliseconds(3)},
  };
  for (const BackoffPolicy& policy : policies) {
    CAPTURE(policy.initial.count());
    CAPTURE(policy.cap.count());
    for (uint32_t attempt = 0; attempt < 3; ++attempt) {
      CAPTURE(attempt);
      for (double draw : kDraws) {
        CAPTURE(draw);
        CHECK(backoff_delay(policy, attempt, draw).count() > 0);
      }
    }
  }
}

}  // namespace
}  // namespace cachecar
