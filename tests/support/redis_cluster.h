#pragma once

// RedisCluster runs a real Redis Cluster on loopback for one integration test: N primaries,
// each with R replicas, every node a private RedisServer (own port, own directory, its own
// nodes.conf) formed with `redis-cli --cluster create`. It also drives the cluster through the
// events a cluster client must survive: a reshard (in the foreground or in the background while
// the test sends load), one slot left half-migrated (ASK redirections), a manual failover and a
// primary crash.
//
// Each node's cluster bus gets its own free port (--cluster-port) rather than Redis's default of
// port + 10000, which for the ephemeral ports free_tcp_port() returns is often above 65535.
//
// "Live" nodes below are the ones whose process runs: a node killed here (kill_primary) or by
// the test (node(i).kill(), stop()) is skipped by every query until it is started again. A
// paused node is not skipped; queries that reach it time out.
//
// Every method that waits is bounded and throws std::runtime_error saying what it was waiting
// for. Not thread-safe: drive it from the test's main thread, which also must outlive the child
// processes (see process.h on PR_SET_PDEATHSIG).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"

namespace cachecar::test {

class RedisCluster {
 public:
  // `primaries` >= 3 (redis-cli refuses fewer), `replicas_per_primary` >= 0. `extra_args` go
  // to every node after the cluster's own (so they may override them); a --requirepass there is
  // also used as every node's --masterauth and passed to redis-cli. `node_timeout_ms` is
  // cluster-node-timeout: how long a dead primary goes unnoticed. Returns once the cluster is
  // stable (wait_until_stable); throws std::runtime_error with redis-cli's output otherwise.
  // `node_args`, when set, gives node i arguments of its own, after `extra_args` (a TLS port:
  // every node needs another one).
  explicit RedisCluster(int primaries = 3, int replicas_per_primary = 0,
                        std::vector<std::string> extra_args = {}, int node_timeout_ms = 1000,
                        std::function<std::vector<std::string>(size_t node)> node_args = nullptr);
  // Stops a running background reshard first, then every node.
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // "redis+cluster://127.0.0.1:P1,127.0.0.1:P2,..." naming the current live primaries (seeds).
  std::string url() const;
  size_t size() const { return nodes_.size(); }  // all nodes, live or not
  RedisServer& node(size_t i) { return *nodes_.at(i); }
  // Live nodes whose ROLE is master now, in node order.
  std::vector<RedisServer*> primaries() const;
  // Live nodes replicating `primary` now (ROLE), in node order.
  std::vector<RedisServer*> replicas_of(const RedisServer& primary) const;
  std::string node_id(RedisServer& node);  // CLUSTER MYID
  int key_slot(const std::string& key);    // CLUSTER KEYSLOT, asked of any live node
  // The live primary that owns the key's slot now, by the primaries' own word (the "myself"
  // line of CLUSTER NODES; on a conflict, the highest config epoch wins, as in Redis). During
  // begin_migration that is still the source.
  RedisServer& primary_for(const std::string& key);

  // Runs one command on the primary serving `key` (`argv` must contain the key) and follows
  // redirections as a cluster client would: MOVED to the named node, and ASK with ASKING on the
  // target, so a key already moved out of a half-migrated slot is found. Rendered as
  // RedisServer::command() does.
  std::string command_for_key(const std::string& key, const std::vector<std::string>& argv);
  RespReply command_reply_for_key(const std::string& key, const std::vector<std::string>& argv);
  // Runs `commands` in order on ONE connection to the primary serving `key`, without following
  // redirections, and returns every reply. This is what WAIT needs: it waits for the writes
  // made on its own connection, so a WAIT sent on a fresh connection (as every
  // RedisServer::command() is) returns at once with every connected replica counted. Each reply
  // must arrive within 10 s.
  std::vector<RespReply> pipeline_for_key(const std::string& key,
                                          const std::vector<std::vector<std::string>>& commands);
  std::optional<std::string> get(const std::string& key);
  long long total_keys();  // sum of DBSIZE over the primaries
  void flush_all();        // FLUSHALL on every primary

  // Moves `slots` slots (the lowest-numbered ones `from` owns) to `to` with `redis-cli --cluster
  // reshard`; their keys migrate with them. Returns once it is done and the cluster is stable.
  // Throws with redis-cli's output on failure. REQUIRES: no begin_migration() left unfinished.
  void reshard(RedisServer& from, RedisServer& to, int slots);
  // The same reshard as a background child process: returns once the cluster is found stable
  // and redis-cli started, so a test can send load while slots move. wait_reshard() waits for
  // it to finish (up to 120 s; throws on failure) and for the cluster to be stable again.
  void start_reshard(RedisServer& from, RedisServer& to, int slots);
  void wait_reshard();

  // Leaves `slot` half-migrated, which produces ASK redirections: CLUSTER SETSLOT IMPORTING on
  // `to`, MIGRATING on `from`, then MIGRATE of only `keys_to_move` (each must hash to `slot`;
  // missing ones are skipped). finish_migration() migrates the slot's remaining keys, runs
  // CLUSTER SETSLOT NODE on `to`, `from` and every other live primary, and waits until the
  // cluster is stable. One migration at a time.
  void begin_migration(int slot, RedisServer& from, RedisServer& to,
                       const std::vector<std::string>& keys_to_move);
  void finish_migration();

  // Manual failover: CLUSTER FAILOVER on a replica of `primary` (which must be live and
  // replicated: replicas_per_primary >= 1). Returns the replica once it is primary and the
  // cluster is stable; the old primary is then its replica.
  RedisServer& failover(RedisServer& primary);
  // SIGKILLs `primary` and returns the replica promoted in its place, once the cluster is stable
  // without it (about node_timeout_ms plus the election delay, 0.5 to 1 s).
  RedisServer& kill_primary(RedisServer& primary);

  // Waits until every live node says cluster_state:ok, all of them report the same primaries
  // for the same slot ranges (CLUSTER SLOTS), those primaries are live, and every live replica's
  // link to its primary is up. Throws std::runtime_error naming what was still wrong.
  void wait_until_stable(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Migration {
    int slot = 0;
    RedisServer* from = nullptr;
    RedisServer* to = nullptr;
  };

  std::vector<RedisServer*> live_nodes() const;
  RedisServer& any_live_node() const;
  RedisServer* node_on_port(int port) const;
  RedisServer& owner_of_slot(int slot) const;
  // What keeps the cluster from being stable, or "" when it is.
  std::string stability_problem() const;
  // redis-cli with `args`, authenticated and without colours.
  std::unique_ptr<ChildProcess> start_cli(std::vector<std::string> args) const;
  std::vector<std::string> reshard_args(RedisServer& from, RedisServer& to, int slots);
  void migrate_keys(RedisServer& from, RedisServer& to, const std::vector<std::string>& keys);

  int replicas_per_primary_ = 0;
  std::string password_;
  // Declared before the nodes so that it outlives them: it holds their nodes-*.conf.
  TempDir dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::optional<Migration> migration_;
  // Declared last so that it is destroyed (SIGKILLed with its process group) before the nodes
  // it talks to go away.
  std::unique_ptr<ChildProcess> reshard_;
};

}  // namespace cachecar::test
