#pragma once
// Counters, gauges and histograms, one set per worker, rendered in the Prometheus text
// exposition format. Each worker is the only writer of its set (no contention on the request
// path: an increment is a plain load and store); the admin thread reads every set when it is
// scraped and sums them. Names follow Prometheus conventions: the cachecar_ prefix, _total
// counters, _seconds histograms, base units.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_status.h"
#include "cache/purge_order.h"

namespace cachecar {

// Written by one thread, read by others: relaxed atomics, no read-modify-write needed.
class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { value_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  // Upper bounds in seconds: from 100 µs (a cache hit) to 10 s (a slow upstream).
  static constexpr std::array<double, 14> kBounds{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10};
  void observe(double seconds);

  // Per bucket (not cumulative), the last one for values above every bound.
  std::array<Counter, kBounds.size() + 1> buckets;
  Counter count;
  Counter sum_nanoseconds;
};

inline constexpr std::array<std::string_view, 8> kMethodNames{
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"};
inline constexpr size_t kStatusClasses = 5;  // 1xx to 5xx
inline constexpr std::array<std::string_view, 4> kUpstreamErrorKinds{"refused", "reset", "timeout",
                                                                     "invalid"};

size_t method_index(std::string_view method);
// 0 for 1xx ... 4 for 5xx; statuses outside 100-599 count as 5xx.
size_t status_class_index(int status);

struct WorkerMetrics {
  // cachecar_requests_total{method, status_class, cache}
  std::array<std::array<std::array<Counter, kCacheStatuses>, kStatusClasses>, kMethodNames.size()>
      requests;
  Histogram request_duration;
  Histogram upstream_duration;
  std::array<Counter, kUpstreamErrorKinds.size()> upstream_errors;
  Counter rate_limited;
  Counter writes_rejected;  // on_invalidation_failure: reject, Redis unreachable
  // rate_limit.sync: batched (ratelimit/batched_limiter.h), counted as they happen.
  Counter rate_limit_local_allowed;
  Counter rate_limit_local_denied;
  Counter rate_limit_settles;          // clients' counts sent, one INCRBY each
  Counter rate_limit_settle_failures;  // of those, unanswered or refused: sent again later
  Counter rate_limit_counts_confirmed;
  Counter rate_limit_counts_dropped;  // their window ended before Redis had them
  Counter rate_limit_tracked_clients;  // gauge
  // Requests whose session was read (issue 17), by what it said.
  Counter session_user;            // a valid session with a user
  Counter session_no_user;         // gone (logged out, expired) or without a user
  Counter session_unavailable;     // Redis could not say
  Counter session_touches;         // sessions renewed for requests cachecar answered itself
  Counter session_touch_failures;  // of those, not sent or not confirmed

  // Copied from the worker's objects by its heartbeat (at most a second old when scraped).
  Counter client_connections;
  Counter upstream_idle;
  Counter upstream_busy;
  Counter redis_connected;
  Counter redis_servers;            // servers commands go to: 1, or a cluster's primaries
  Counter redis_servers_connected;  // of those, connected now
  Counter redis_commands;
  Counter redis_writes;
  Counter redis_errors;
  Counter redis_timeouts;
  Counter redis_disconnects;
  Counter redis_redirections;
  Counter cache_fills;
  Counter cache_fills_refused;
  Counter cache_fill_errors;
  Counter cache_invalidations;
  Counter journal_keys;  // gauge: invalidations owed now
  Counter journal_recorded;
  Counter journal_replayed;
  Counter journal_overflows;
  Counter journal_abandoned;  // still owed when the worker stopped
  Counter epoch_bumps;
  Counter epoch_bump_owed;  // gauge: 1 while this worker owes one
  Counter near_hits;
  Counter near_stores;
  Counter near_invalidations;
  Counter near_evictions;
  Counter near_flushes;
  Counter near_entries;   // gauge
  Counter near_bytes;     // gauge
  Counter near_usable;  // gauge: 1 while the near cache may be used

  void record_request(std::string_view method, int status, CacheStatus cache, double seconds);
};

// The admin loop's purges (cache/purger.h): by kind, and the keys they removed.
std::string render_purge_metrics(const PurgeStats& stats);

// The whole exposition: every family with its HELP and TYPE, summed across workers (Redis
// connection state per worker).
std::string render_metrics(const std::vector<const WorkerMetrics*>& workers,
                           std::string_view version);

}  // namespace cachecar
