#pragma once
// Redis Cluster (redis+cluster://seed1,seed2): every command goes to the primary that serves
// its key's slot. hiredis 0.14 has no cluster support (hiredis-cluster needs 1.x), so the
// routing is ours, on our single-server client.
//
// Per worker: one RedisNode per primary, each auto-pipelined as before (the commands of one
// loop iteration leave in one write per node), and one more connection, to any node, that asks
// for the slot map (CLUSTER SHARDS; CLUSTER SLOTS before Redis 7) at start, every few seconds
// and after a MOVED answer.
//
// A call fans out and joins: its commands go to their nodes, and the waiter gets one reply
// per command, in order, as from one server. An MGET, DEL, UNLINK or EXISTS whose keys hash to
// several slots is sent as one command per slot and its answers put back together. A script's
// keys must share a slot (hash tags, see cache/key.h): it is routed by its first key.
//
// Redirections (the Cluster specification, "Redirection and resharding"): MOVED updates the
// map and sends the command again; ASK sends ASKING then the command to the node named, once,
// without updating the map. TRYAGAIN (a multi-key command meeting a slot half migrated) and
// CLUSTERDOWN are sent again after a moment. Each command follows at most 16 redirections and
// no call outlives command_timeout: a command that cannot be sent again in time fails its whole
// call, as a lost connection does, and the caller goes on without Redis.
//
// submit() refuses (nullptr) while the map is unknown or a node the call needs is not ready,
// so requests whose keys live on healthy primaries go on while another fails over.
//
// A replica that becomes a primary (a failover) may lack the last writes of the primary it
// replaces, invalidations among them: on_primary_moved callbacks hear of it, from the MOVED
// that first points at it or from the next map, before any command is sent to it.
//
// Ownership: the worker owns the cluster client, which owns its nodes. A node that leaves the
// map is stopped at once (its calls fail) and destroyed on the next map timer tick, never
// under a callback of its own.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "redis/cluster_slots.h"
#include "redis/redis_client.h"
#include "redis/redis_locator.h"
#include "redis/redis_node.h"
#include "uv/handle.h"

namespace cachecar {

class RedisCluster final : public RedisClient, private RedisWaiter {
 public:
  // Redirections one command may follow before its last answer is taken as it is.
  static constexpr int kMaxRedirections = 16;
  // How often the slot map is read again when nothing else asks for it.
  static constexpr uint64_t kMapRefreshMs = 5'000;
  // The wait while the map is unsettled: a slot has no primary, or a primary cannot be
  // reached. A crashed primary stays in the map until its replica takes over (the cluster's
  // node timeout plus an election), and no command is answered MOVED meanwhile, so only a map
  // read soon after names the replacement. After kQuickMapAnswers such answers the wait
  // doubles up to kMapRefreshMs, so a primary that stays down does not have every worker of
  // the fleet asking four times a second.
  static constexpr uint64_t kUnsettledMapRefreshMs = 250;
  static constexpr uint32_t kQuickMapAnswers = 20;
  // The wait before a command answered TRYAGAIN or CLUSTERDOWN, or waiting for a node to
  // connect, is tried again.
  static constexpr uint64_t kRetryMs = 5;

  // `settings.url` is a redis+cluster:// URL; its other fields apply to every node.
  RedisCluster(uv_loop_t* loop, RedisSettings settings);
  ~RedisCluster() override;
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  void register_script(const RedisScript* script) override { scripts_.push_back(script); }
  void on_ready(std::function<void()> callback) override {
    on_ready_.push_back(std::move(callback));
  }
  void on_lost(std::function<void()> callback) override { on_lost_.push_back(std::move(callback)); }
  void on_primary_moved(std::function<void(const std::string& why)> callback) override {
    on_primary_moved_.push_back(std::move(callback));
  }
  void watch_nodes(std::function<void(RedisNode&)> added,
                   std::function<void(RedisNode&)> removed) override;
  void start() override;
  void stop() override;

  // The map is known and at least one primary is connected.
  bool ready() const override;
  void set_command_timeout(Duration timeout) override;
  void set_connect_timeout(Duration timeout) override;
  RedisStats stats() const override;

  RedisClient::Call* submit(std::vector<RedisCommand> commands, RedisWaiter& waiter,
                            uint64_t tag) override;
  void cancel(RedisClient::Call* call) override;

  // The primaries the map names, connected or not (tests, metrics).
  size_t primaries() const { return nodes_.size(); }

 private:
  struct Call;
  struct Part;
  struct Flight;
  struct Parked;

  // The node serving `slot` (any ready one for nullopt), or nullptr when none is known.
  RedisNode* node_for(std::optional<int> slot);
  RedisNode* node_at(const HostPort& address);
  RedisNode& ensure_node(const HostPort& address);
  struct Route {
    RedisNode* node;
    std::vector<uint32_t> parts;
  };
  struct SlotGroup {
    int slot;
    uint32_t keys;
  };

  Call* new_call();
  void recycle(Call* call);
  Flight* new_flight();
  void recycle(Flight* flight);
  Part& add_part(Call& call, uint32_t command);
  // Sends those of the call's parts (all for `node`) as one call to it; parks them when it
  // cannot take them now.
  void send(Call& call, RedisNode& node, const std::vector<uint32_t>& parts);
  // Sends one part again where it must go now, or parks it until it can be.
  void resend(Call& call, uint32_t part);
  // The same with the command handed over, so that the node answers NOSCRIPT itself.
  void resend_owned(Call& call, uint32_t part);
  void on_flight_done(Flight& flight, std::vector<RedisReplyPtr>& replies);
  // One part's final answer.
  void settle(Call& call, const Part& part, RedisReplyPtr reply);
  void complete(Call& call);
  // Ends `call` with no replies (its waiter, if any, is told) and frees it.
  void fail(Call& call);
  // Stops every flight and parked part of `call`, and frees it; the waiter is not called.
  void abandon(Call& call);
  void retry_parked();
  void arm_retry();

  void refresh_map();
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void apply_map(SlotMap map, const HostPort& asked);
  // A node that was a replica serves a slot now: the primary it replaced may have taken
  // writes it never saw.
  void announce_promotion(const HostPort& old_primary, const HostPort& new_primary);
  // Every slot has a primary, and every primary's connection is up.
  bool map_settled() const;
  // When to read the map next, after an answer.
  uint64_t next_map_refresh_ms();
  void on_node_ready();
  void on_map_timer();

  uv_loop_t* loop_;
  RedisSettings settings_;
  std::vector<const RedisScript*> scripts_;
  std::vector<std::function<void()>> on_ready_;
  std::vector<std::function<void()>> on_lost_;
  std::vector<std::function<void(const std::string&)>> on_primary_moved_;
  std::vector<std::function<void(RedisNode&)>> node_added_;
  std::vector<std::function<void(RedisNode&)>> node_removed_;

  std::shared_ptr<RotatingLocator> map_sources_;  // the seeds, then every node the map names
  std::unique_ptr<RedisNode> map_client_;         // asks any node for the slot map
  bool map_question_out_ = false;
  bool map_wanted_ = false;  // ask again as soon as the current question is answered
  bool logged_map_problem_ = false;
  uint64_t last_map_answer_ms_ = 0;
  uint32_t unsettled_answers_ = 0;  // map answers in a row that were not settled
  std::optional<SlotMap> map_;
  // Orders addresses without building their text: routing looks a node up for every part.
  struct AddressLess {
    bool operator()(const HostPort& a, const HostPort& b) const {
      return a.port != b.port ? a.port < b.port : a.host < b.host;
    }
  };
  std::map<HostPort, std::unique_ptr<RedisNode>, AddressLess> nodes_;  // the primaries
  std::set<std::string> promoted_;  // replicas announced as primaries, while they are ones
  std::vector<std::unique_ptr<RedisNode>> retired_;  // stopped; freed on the timer
  UvPtr<uv_timer_t> map_timer_;
  UvPtr<uv_timer_t> retry_timer_;

  std::vector<Call*> calls_;  // in progress, in submission order
  uint64_t next_serial_ = 0;
  // Done with, kept for reuse (at most kMaxPooled each).
  static constexpr size_t kMaxPooled = 256;
  std::vector<std::unique_ptr<Call>> free_calls_;
  std::vector<std::unique_ptr<Flight>> free_flights_;
  // Scratch space of submit() and send(), kept to keep its capacity.
  std::vector<Route> routes_;
  std::vector<SlotGroup> groups_;
  std::vector<int> key_slots_;  // of a split command's keys, by argument position
  std::vector<const RedisCommand*> borrowed_;
  std::vector<uint32_t> one_part_ = std::vector<uint32_t>(1);
  std::vector<Parked> parked_;  // parts waiting to be sent again
  uint64_t redirections_ = 0;
  RedisStats retired_stats_;  // of nodes no longer in the map
  bool stopped_ = false;
};

}  // namespace cachecar
