#pragma once
// Wall-clock time in Unix milliseconds, for what is compared across processes and machines:
// an entry's stored time, a fill's lookup time against Redis's TIME. Durations within one
// process use the loop's monotonic clock (uv_now, uv_hrtime) instead.

#include <chrono>
#include <cstdint>

namespace cachecar {

inline int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cachecar
