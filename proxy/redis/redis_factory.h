#pragma once
// The Redis client that redis.url names: one server (redis://, rediss://), a master found
// through Sentinel (redis+sentinel://), or a Redis Cluster (redis+cluster://). Each worker
// makes its own, and the admin loop one for purges.

#include <uv.h>

#include <memory>

#include "config/config.h"
#include "redis/redis_client.h"

namespace cachecar {

class SentinelDirectory;

struct RedisConnection {
  // With redis+sentinel:// only; stop it after the client.
  std::shared_ptr<SentinelDirectory> sentinels;
  std::unique_ptr<RedisClient> client;
};

// Started sentinels (if any) and a client not yet started: register scripts and callbacks on
// it, then start() it. `role` names a connection other than a worker's in log lines, and
// makes its connects debug lines (redis/redis_node.h: quiet_connects).
RedisConnection make_redis_connection(uv_loop_t* loop, const Config& config,
                                      const std::string& role = "");

}  // namespace cachecar
