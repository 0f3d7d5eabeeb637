#pragma once
// Reconnect delays: capped exponential growth with jitter, so a fleet that lost its Redis at
// the same moment does not reconnect in lockstep. Pure: the random draw is passed in.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace cachecar {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds cap{5'000};
};

// The delay before reconnect attempt `attempt` (0 for the first retry). `unit_random` in
// [0, 1) picks a point in [half, full] of the exponential delay ("equal jitter"): never
// zero, so a flapping Redis is not hammered, yet spread out.
inline std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, uint32_t attempt,
                                               double unit_random) {
  const uint32_t shift = std::min<uint32_t>(attempt, 20);
  const int64_t grown = policy.initial.count() << shift;
  const int64_t full = std::min<int64_t>(grown, policy.cap.count());
  const int64_t half = full / 2;
  const auto jitter = static_cast<int64_t>(static_cast<double>(full - half) * unit_random);
  return std::chrono::milliseconds(std::max<int64_t>(1, half + jitter));
}

}  // namespace cachecar
