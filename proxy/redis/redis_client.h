#pragma once
// What the cache, the limiter and the journal ask of Redis, whatever Redis is: one server
// (RedisNode, also behind Sentinel) or a Redis Cluster (RedisCluster, which routes each command
// to the primary of its key's slot). The callers build commands and read replies; where the
// commands go is the client's business.
//
// Contract, for every implementation:
//  - submit() sends a group of commands and reports all their replies, in order, in one
//    callback. It refuses at once (returns nullptr) unless the commands can be sent now: while
//    Redis is down no request waits for it.
//  - Every call ends exactly once: with one reply per command, or with none when it failed
//    (timeout, disconnect). A waiter that goes away first must cancel() its call.
//  - Scripts registered before start() are called with EVALSHA and loaded wherever needed.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/duration.h"
#include "redis/command.h"
#include "redis/reply.h"

namespace cachecar {

class RedisNode;

class RedisWaiter {
 public:
  // One reply per command, in order; empty when the call failed. The waiter may move from
  // `replies`. The call handle is invalid after this returns.
  virtual void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) = 0;

 protected:
  ~RedisWaiter() = default;
};

struct RedisStats {
  uint64_t commands = 0;
  uint64_t writes = 0;  // socket writes; commands / writes is the pipelining factor
  uint64_t errors = 0;  // error replies
  uint64_t timeouts = 0;
  uint64_t disconnects = 0;
  uint64_t redirections = 0;  // MOVED and ASK answers followed (Redis Cluster)
  uint64_t servers = 0;       // servers commands go to: 1, or a cluster's primaries
  uint64_t servers_ready = 0;
};

class RedisClient {
 public:
  // A call in progress: only its client knows what is inside.
  struct Call {
   protected:
    Call() = default;
    ~Call() = default;
  };

  virtual ~RedisClient() = default;

  // Requires: before start().
  virtual void register_script(const RedisScript* script) = 0;
  // Adds a callback run each time Redis becomes usable (first connect, every reconnect, and
  // for a cluster each node's), once ready, so it may submit. Requires: before start().
  virtual void on_ready(std::function<void()> callback) = 0;
  // Adds a callback run each time a connection that was ready is lost, before its pending
  // calls fail: Redis forgets a connection's state with it (CLIENT TRACKING, subscriptions).
  virtual void on_lost(std::function<void()> callback) = 0;
  // Adds a callback run when a primary was replaced by one of its replicas (a failover):
  // replication is asynchronous, so writes the old primary took may be gone. `why` names both
  // servers. Requires: before start().
  virtual void on_primary_moved(std::function<void(const std::string& why)> callback) = 0;
  // Each connection to a server that commands go out on: one for a single Redis, one per
  // primary of a cluster. `added` runs as one is made (before it connects; at once for those
  // that exist), `removed` when one leaves (stopped for good, not yet destroyed); stop() stops
  // them all and removes none, so watchers go before the client. What is
  // per server, such as near-cache tracking (Redis announces changes of its own keys only),
  // follows them. Requires: before start().
  virtual void watch_nodes(std::function<void(RedisNode&)> added,
                           std::function<void(RedisNode&)> removed) = 0;
  virtual void start() = 0;
  // Fails pending calls and closes every connection; nothing is sent after it.
  virtual void stop() = 0;

  virtual bool ready() const = 0;
  // For calls submitted from now on (a configuration reload).
  virtual void set_command_timeout(Duration timeout) = 0;
  // For connection attempts started from now on.
  virtual void set_connect_timeout(Duration timeout) = 0;
  virtual RedisStats stats() const = 0;

  // Sends `commands` as one call. nullptr when they cannot be sent now (nothing is sent, the
  // waiter is not called).
  virtual Call* submit(std::vector<RedisCommand> commands, RedisWaiter& waiter, uint64_t tag) = 0;
  // The waiter of `call` will not be called. Requires: `call` has not completed.
  virtual void cancel(Call* call) = 0;
};

}  // namespace cachecar
