#pragma once
// What the per-request code may use of its worker: the loop, the configuration in force and
// the worker's connections to the outside. Owned by the Worker; everything here lives as long
// as the worker's loop runs.

#include <uv.h>

#include <memory>
#include <string>

#include "config/config.h"

namespace cachecar {

class BackgroundRefreshes;
class BatchedLimiter;
class CacheStore;
class Coalescer;
class NearTracking;
class SessionTouches;
struct WorkerMetrics;
class UpstreamPool;

struct WorkerContext {
  uv_loop_t* loop = nullptr;
  std::shared_ptr<const Config> config;  // replaced as a whole on reload
  UpstreamPool* upstream = nullptr;
  CacheStore* cache = nullptr;
  Coalescer* coalescer = nullptr;
  NearTracking* near = nullptr;  // null when cache.near is off
  WorkerMetrics* metrics = nullptr;
  BatchedLimiter* limiter = nullptr;  // rate_limit.sync: batched's local counts
  BackgroundRefreshes* refreshes = nullptr;  // cache.mode: http's stale-while-revalidate
  SessionTouches* touches = nullptr;         // session.touch's renewals
  int index = 0;
  // A hit's response is written here and sent from here: the capacity stays, so a hit
  // allocates nothing for its bytes. Free between two hits (one callback writes and sends).
  std::string response_scratch;
};

}  // namespace cachecar
