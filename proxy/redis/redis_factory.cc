#include "redis/redis_factory.h"

#include "redis/redis_cluster.h"
#include "redis/redis_node.h"
#include "redis/sentinel.h"

namespace cachecar {

RedisConnection make_redis_connection(uv_loop_t* loop, const Config& config,
                                      const std::string& role) {
  RedisSettings settings;
  settings.url = config.redis.url;
  if (config.redis.url.tls) {
    settings.tls = config.redis.tls_context;
    settings.tls_peer_name = config.redis.tls.server_name;
  }
  settings.command_timeout = config.redis.command_timeout;
  settings.connect_timeout = config.redis.connect_timeout;
  settings.role = role;
  settings.quiet_connects = !role.empty();
  RedisConnection connection;
  if (config.redis.url.uses_sentinel()) {
    connection.sentinels = std::make_shared<SentinelDirectory>(loop, settings);
    settings.locator = connection.sentinels;
    connection.sentinels->start();
  }
  if (config.redis.url.uses_cluster()) {
    connection.client = std::make_unique<RedisCluster>(loop, settings);
  } else {
    connection.client = std::make_unique<RedisNode>(loop, settings);
  }
  return connection;
}

}  // namespace cachecar
