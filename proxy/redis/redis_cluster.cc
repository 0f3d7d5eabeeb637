#include "redis/redis_cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace cachecar {
namespace {

constexpr uint64_t kShardsTag = 1;
constexpr uint64_t kSlotsTag = 2;
// MOVED answers come in bursts while slots move; the map is read at most this often for them.
constexpr uint64_t kMinMapIntervalMs = 100;

// How the parts of one split command come back together.
struct Join {
  SplitReply kind = SplitReply::None;
  uint32_t parts_left = 0;
  std::vector<RedisReplyPtr> elements;  // Elements: by the key's position in the command
  long long sum = 0;                    // Sum
  RedisReplyPtr failure;                // the first part whose answer was not what was asked
};

bool is_retry_later(const redisReply* reply) {
  return error_is(reply, "TRYAGAIN") || error_is(reply, "CLUSTERDOWN");
}

}  // namespace

// One command, or the keys of one slot of a split command, on its way to one node.
struct RedisCluster::Part {
  uint32_t command = 0;             // the call's command this answers (all or part of)
  std::vector<uint32_t> positions;  // split: the keys of that command this part carries
  std::optional<int> slot;          // nullopt: no key, any node answers
  RedisCommand text;                // kept to be sent again after a redirection
  std::optional<HostPort> asking;   // ASK: send ASKING and the command to this node
  int redirections = 0;
  bool script_resent = false;  // sent again whole after NOSCRIPT (see on_flight_done)
};

// Calls and flights are kept for reuse once done, with the capacity of their vectors (and of
// their parts' strings): a hit on a cluster then allocates about as little as on one server.
struct RedisCluster::Call final : RedisClient::Call {
  uint64_t serial = 0;  // new for each use of this object
  RedisWaiter* waiter = nullptr;
  uint64_t tag = 0;
  uint64_t deadline_ms = 0;
  std::vector<RedisReplyPtr> replies;
  std::vector<Part> parts;  // the first part_count are this use's
  size_t part_count = 0;
  std::vector<Join> joins;  // one per command when any was split
  bool split = false;
  uint32_t parts_out = 0;  // parts without their final answer
  std::vector<Flight*> flights;
};

// Some of a call's parts sent to one node together: that node's waiter.
struct RedisCluster::Flight final : RedisWaiter {
  RedisCluster* cluster = nullptr;
  Call* call = nullptr;
  RedisNode* node = nullptr;
  RedisClient::Call* node_call = nullptr;
  std::vector<uint32_t> parts;  // indexes into call->parts, in the order sent

  void on_redis_done(uint64_t /*tag*/, std::vector<RedisReplyPtr>& replies) override {
    cluster->on_flight_done(*this, replies);
  }
};

struct RedisCluster::Parked {
  Call* call;
  uint64_t serial;  // the call's, so a call object used again is not mistaken for this use
  uint32_t part;
};

RedisCluster::RedisCluster(uv_loop_t* loop, RedisSettings settings)
    : loop_(loop),
      settings_(std::move(settings)),
      map_sources_(std::make_shared<RotatingLocator>(settings_.url.cluster_seeds)) {
  map_timer_ = make_timer(loop_, this);
  retry_timer_ = make_timer(loop_, this);
  RedisSettings map_settings = settings_;
  map_settings.url.cluster_seeds.clear();
  map_settings.locator = map_sources_;
  map_settings.any_role = true;
  map_settings.role = "cluster map";
  map_client_ = std::make_unique<RedisNode>(loop_, std::move(map_settings));
  map_client_->on_ready([this] {
    if (map_wanted_ || !map_) {
      refresh_map();
    }
  });
}

RedisCluster::~RedisCluster() { stop(); }

void RedisCluster::watch_nodes(std::function<void(RedisNode&)> added,
                               std::function<void(RedisNode&)> removed) {
  for (auto& [address, node] : nodes_) {
    added(*node);
  }
  node_added_.push_back(std::move(added));
  node_removed_.push_back(std::move(removed));
}

void RedisCluster::start() {
  map_wanted_ = true;
  map_client_->start();
}

void RedisCluster::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  while (!calls_.empty()) {
    fail(*calls_.front());
  }
  parked_.clear();
  for (auto& [address, node] : nodes_) {
    node->stop();
  }
  map_client_->stop();
  map_timer_.reset();
  retry_timer_.reset();
}

bool RedisCluster::ready() const {
  return map_.has_value() && std::any_of(nodes_.begin(), nodes_.end(),
                                         [](const auto& entry) { return entry.second->ready(); });
}

void RedisCluster::set_command_timeout(Duration timeout) {
  settings_.command_timeout = timeout;
  for (auto& [address, node] : nodes_) {
    node->set_command_timeout(timeout);
  }
  map_client_->set_command_timeout(timeout);
}

void RedisCluster::set_connect_timeout(Duration timeout) {
  settings_.connect_timeout = timeout;
  for (auto& [address, node] : nodes_) {
    node->set_connect_timeout(timeout);
  }
  map_client_->set_connect_timeout(timeout);
}

namespace {

void add_stats(RedisStats& total, const RedisStats& one) {
  total.commands += one.commands;
  total.writes += one.writes;
  total.errors += one.errors;
  total.timeouts += one.timeouts;
  total.disconnects += one.disconnects;
}

}  // namespace

RedisStats RedisCluster::stats() const {
  RedisStats total = retired_stats_;
  for (const auto& [address, node] : nodes_) {
    add_stats(total, node->stats());
    total.servers_ready += node->ready() ? 1 : 0;
  }
  total.servers = nodes_.size();
  total.redirections = redirections_;
  return total;
}

// ---------------------------------------------------------------------------------------------
// Nodes

RedisNode* RedisCluster::node_at(const HostPort& address) {
  const auto found = nodes_.find(address);
  return found == nodes_.end() ? nullptr : found->second.get();
}

RedisNode* RedisCluster::node_for(std::optional<int> slot) {
  if (!map_) {
    return nullptr;
  }
  if (!slot) {
    for (auto& [address, node] : nodes_) {
      if (node->ready()) {
        return node.get();
      }
    }
    return nullptr;
  }
  const ClusterShard* shard = map_->shard_of(*slot);
  return shard == nullptr ? nullptr : node_at(shard->primary);
}

RedisNode& RedisCluster::ensure_node(const HostPort& address) {
  std::unique_ptr<RedisNode>& slot = nodes_[address];
  if (slot) {
    return *slot;
  }
  RedisSettings node_settings = settings_;
  node_settings.url.cluster_seeds.clear();
  node_settings.url.address = address;
  node_settings.role = "cluster primary";
  slot = std::make_unique<RedisNode>(loop_, std::move(node_settings));
  for (const RedisScript* script : scripts_) {
    slot->register_script(script);
  }
  slot->on_ready([this] { on_node_ready(); });
  slot->on_lost([this] {
    // A primary that went away may be failing over: only a new map names its replacement,
    // since no command reaches that replacement to be answered MOVED.
    refresh_map();
    for (const auto& callback : on_lost_) {
      callback();
    }
  });
  for (const auto& added : node_added_) {
    added(*slot);
  }
  if (!stopped_) {
    slot->start();
  }
  return *slot;
}

void RedisCluster::on_node_ready() {
  if (!parked_.empty()) {
    retry_parked();
  }
  for (const auto& callback : on_ready_) {
    callback();
  }
}

// ---------------------------------------------------------------------------------------------
// Calls

RedisCluster::Call* RedisCluster::new_call() {
  std::unique_ptr<Call> call;
  if (free_calls_.empty()) {
    call = std::make_unique<Call>();
  } else {
    call = std::move(free_calls_.back());
    free_calls_.pop_back();
  }
  call->serial = ++next_serial_;
  return call.release();
}

void RedisCluster::recycle(Call* call) {
  call->waiter = nullptr;
  call->replies.clear();
  call->part_count = 0;
  call->split = false;
  call->parts_out = 0;
  call->flights.clear();
  if (free_calls_.size() < kMaxPooled) {
    free_calls_.emplace_back(call);
  } else {
    delete call;
  }
}

RedisCluster::Part& RedisCluster::add_part(Call& call, uint32_t command) {
  if (call.part_count == call.parts.size()) {
    call.parts.emplace_back();
  }
  Part& part = call.parts[call.part_count++];
  part.command = command;
  part.positions.clear();
  part.slot.reset();
  part.asking.reset();
  part.redirections = 0;
  part.script_resent = false;
  return part;
}

RedisClient::Call* RedisCluster::submit(std::vector<RedisCommand> commands, RedisWaiter& waiter,
                                        uint64_t tag) {
  if (stopped_ || !map_ || commands.empty()) {
    return nullptr;
  }
  Call* call = new_call();
  call->waiter = &waiter;
  call->tag = tag;
  call->replies.resize(commands.size());

  // The parts by node: a handful at most, one per primary the call touches. The first
  // `routes` entries of routes_ are this call's (the rest keep their capacity for later).
  size_t routes = 0;
  auto route = [&](uint32_t index) {
    RedisNode* node = node_for(call->parts[index].slot);
    if (node == nullptr || !node->ready()) {
      return false;
    }
    size_t r = 0;
    while (r < routes && routes_[r].node != node) {
      ++r;
    }
    if (r == routes) {
      if (routes == routes_.size()) {
        routes_.emplace_back();
      }
      routes_[r].node = node;
      routes_[r].parts.clear();
      ++routes;
    }
    routes_[r].parts.push_back(index);
    return true;
  };

  for (uint32_t i = 0; i < commands.size(); ++i) {
    RedisCommand& command = commands[i];
    const SplitReply kind = split_kind(command);
    if (kind != SplitReply::None) {
      // The keys by slot, in the order they first appear.
      groups_.clear();
      key_slots_.resize(command.args.size());
      for (uint32_t k = 1; k < command.args.size(); ++k) {
        const int slot = key_hash_slot(command.args[k]);
        key_slots_[k] = slot;
        auto group = std::find_if(groups_.begin(), groups_.end(),
                                  [slot](const SlotGroup& g) { return g.slot == slot; });
        if (group == groups_.end()) {
          groups_.push_back(SlotGroup{slot, 0});
          group = groups_.end() - 1;
        }
        ++group->keys;
      }
      if (groups_.size() > 1) {
        if (!call->split) {
          call->split = true;
          call->joins.resize(std::max(call->joins.size(), commands.size()));
          for (size_t j = 0; j < commands.size(); ++j) {
            call->joins[j].kind = SplitReply::None;
          }
        }
        Join& join = call->joins[i];
        join.kind = kind;
        join.parts_left = static_cast<uint32_t>(groups_.size());
        join.sum = 0;
        join.failure.reset();
        join.elements.clear();
        if (kind == SplitReply::Elements) {
          join.elements.resize(command.args.size() - 1);
        }
        for (const SlotGroup& group : groups_) {
          const auto index = static_cast<uint32_t>(call->part_count);
          Part& part = add_part(*call, i);
          part.slot = group.slot;
          part.text.script = nullptr;
          part.text.num_keys = 0;
          part.text.args.resize(group.keys + 1);
          part.text.args[0].assign(command.args[0]);
          size_t next = 1;
          for (uint32_t k = 1; k < command.args.size(); ++k) {
            if (key_slots_[k] == group.slot) {
              part.text.args[next++].assign(command.args[k]);
              part.positions.push_back(k - 1);
            }
          }
          if (!route(index)) {
            recycle(call);
            return nullptr;
          }
        }
        continue;
      }
    }
    const auto index = static_cast<uint32_t>(call->part_count);
    Part& part = add_part(*call, i);
    // A multi-key command whose keys share a slot was hashed above already.
    part.slot =
        kind != SplitReply::None ? std::optional<int>(groups_.front().slot) : command_slot(command);
    part.text = std::move(command);
    if (!route(index)) {
      recycle(call);
      return nullptr;
    }
  }

  call->parts_out = static_cast<uint32_t>(call->part_count);
  call->deadline_ms = uv_now(loop_) + static_cast<uint64_t>(settings_.command_timeout.count());
  calls_.push_back(call);
  for (size_t r = 0; r < routes; ++r) {
    send(*call, *routes_[r].node, routes_[r].parts);
  }
  return call;
}

void RedisCluster::send(Call& call, RedisNode& node, const std::vector<uint32_t>& parts) {
  static const RedisCommand kAsking{{"ASKING"}};
  borrowed_.clear();
  for (const uint32_t index : parts) {
    const Part& part = call.parts[index];
    if (part.asking) {
      borrowed_.push_back(&kAsking);
    }
    borrowed_.push_back(&part.text);
  }
  Flight* flight = new_flight();
  flight->call = &call;
  flight->node = &node;
  flight->parts = parts;
  flight->node_call = node.submit_borrowed(borrowed_, *flight, 0);
  if (flight->node_call == nullptr) {
    // Ready a moment ago, gone now: the parts wait for it, or for the map to name another.
    for (const uint32_t index : parts) {
      parked_.push_back(Parked{&call, call.serial, index});
    }
    recycle(flight);
    arm_retry();
    return;
  }
  call.flights.push_back(flight);
}

void RedisCluster::resend(Call& call, uint32_t index) {
  const Part& part = call.parts[index];
  RedisNode* node = part.asking ? node_at(*part.asking) : node_for(part.slot);
  // Past the call's deadline, parked: the retry fails the call, so that redirections cannot
  // stretch it past command_timeout.
  if (node != nullptr && node->ready() && uv_now(loop_) < call.deadline_ms) {
    one_part_[0] = index;
    send(call, *node, one_part_);
    return;
  }
  parked_.push_back(Parked{&call, call.serial, index});
  arm_retry();
}

void RedisCluster::on_flight_done(Flight& flight, std::vector<RedisReplyPtr>& replies) {
  Call& call = *flight.call;
  call.flights.erase(std::find(call.flights.begin(), call.flights.end(), &flight));
  if (replies.empty()) {
    recycle(&flight);
    fail(call);  // the node's connection failed or timed out
    return;
  }
  size_t at = 0;
  for (const uint32_t index : flight.parts) {
    Part& part = call.parts[index];
    if (part.asking) {
      ++at;  // ASKING's +OK
    }
    RedisReplyPtr reply = at < replies.size() ? std::move(replies[at]) : nullptr;
    ++at;
    if (part.redirections < kMaxRedirections) {
      if (auto redirection = parse_redirection(reply.get())) {
        ++redirections_;
        ++part.redirections;
        HostPort target = std::move(redirection->node);
        if (target.host.empty()) {
          target.host = flight.node->server().host;  // a node that does not know its own address
        }
        if (redirection->ask) {
          part.asking = target;
        } else {
          part.asking.reset();
          if (map_ && !map_->is_primary(target)) {
            if (const ClusterShard* shard = map_->shard_with_replica(target)) {
              announce_promotion(shard->primary, target);
            }
          }
          if (map_) {
            map_->move_slot(redirection->slot, target);
          }
          refresh_map();
        }
        ensure_node(target);
        resend(call, index);
        continue;
      }
      if (is_retry_later(reply.get())) {
        if (error_is(reply.get(), "CLUSTERDOWN")) {
          refresh_map();  // a slot without a primary: the next map may name one
        }
        ++part.redirections;
        part.asking.reset();
        parked_.push_back(Parked{&call, call.serial, index});
        arm_retry();
        continue;
      }
    }
    if (part.text.script != nullptr && !part.script_resent && error_is(reply.get(), "NOSCRIPT")) {
      // The node lost its script cache (restarted, flushed, a replica promoted). Sent whole
      // this once, its client answers the NOSCRIPT itself with EVAL, which loads the script.
      part.script_resent = true;
      resend_owned(call, index);
      continue;
    }
    settle(call, part, std::move(reply));
  }
  recycle(&flight);
  if (call.parts_out == 0) {
    complete(call);
  }
}

void RedisCluster::resend_owned(Call& call, uint32_t index) {
  const Part& part = call.parts[index];
  RedisNode* node = part.asking ? node_at(*part.asking) : node_for(part.slot);
  std::vector<RedisCommand> commands;
  if (part.asking) {
    // The node's own NOSCRIPT answer would send EVAL without ASKING: send EVAL at once.
    commands.push_back({{"ASKING"}});
    RedisCommand eval{{"EVAL", part.text.script->source, std::to_string(part.text.num_keys)}};
    eval.args.insert(eval.args.end(), part.text.args.begin(), part.text.args.end());
    commands.push_back(std::move(eval));
  } else {
    commands.push_back(part.text);
  }
  Flight* flight = new_flight();
  flight->call = &call;
  flight->node = node;
  flight->parts.assign(1, index);
  const bool in_time = uv_now(loop_) < call.deadline_ms;
  flight->node_call =
      node != nullptr && in_time ? node->submit(std::move(commands), *flight, 0) : nullptr;
  if (flight->node_call == nullptr) {
    recycle(flight);
    parked_.push_back(Parked{&call, call.serial, index});
    arm_retry();
    return;
  }
  call.flights.push_back(flight);
}

void RedisCluster::settle(Call& call, const Part& part, RedisReplyPtr reply) {
  --call.parts_out;
  if (!call.split || call.joins[part.command].kind == SplitReply::None) {
    call.replies[part.command] = std::move(reply);
    return;
  }
  Join& join = call.joins[part.command];
  const redisReply* answer = reply.get();
  if (join.failure) {
    // One part failed already: the command's answer is that failure.
  } else if (join.kind == SplitReply::Elements && answer != nullptr &&
             answer->type == REDIS_REPLY_ARRAY && answer->elements == part.positions.size()) {
    for (size_t j = 0; j < part.positions.size(); ++j) {
      join.elements[part.positions[j]] = take_element(reply.get(), j);
    }
  } else if (join.kind == SplitReply::Sum && reply_integer(answer)) {
    join.sum += *reply_integer(answer);
  } else {
    join.failure = std::move(reply);
  }
  if (--join.parts_left != 0) {
    return;
  }
  if (join.failure) {
    call.replies[part.command] = std::move(join.failure);
  } else if (join.kind == SplitReply::Elements) {
    call.replies[part.command] = make_array_reply(std::move(join.elements));
  } else {
    call.replies[part.command] = make_integer_reply(join.sum);
  }
}

void RedisCluster::complete(Call& call) {
  calls_.erase(std::find(calls_.begin(), calls_.end(), &call));
  if (call.waiter != nullptr) {
    call.waiter->on_redis_done(call.tag, call.replies);
  }
  recycle(&call);
}

void RedisCluster::abandon(Call& call) {
  const auto found = std::find(calls_.begin(), calls_.end(), &call);
  if (found == calls_.end()) {
    return;  // ended already: a waiter must not cancel a call it has been answered for
  }
  calls_.erase(found);
  for (Flight* flight : call.flights) {
    flight->node->cancel(flight->node_call);
    recycle(flight);
  }
  call.flights.clear();
  std::erase_if(parked_, [&call](const Parked& parked) { return parked.call == &call; });
  recycle(&call);
}

void RedisCluster::fail(Call& call) {
  RedisWaiter* waiter = call.waiter;
  const uint64_t tag = call.tag;
  abandon(call);
  if (waiter != nullptr) {
    std::vector<RedisReplyPtr> none;
    waiter->on_redis_done(tag, none);
  }
}

void RedisCluster::cancel(RedisClient::Call* call) {
  if (call != nullptr) {
    abandon(*static_cast<Call*>(call));
  }
}

RedisCluster::Flight* RedisCluster::new_flight() {
  if (free_flights_.empty()) {
    auto* flight = new Flight;
    flight->cluster = this;
    return flight;
  }
  Flight* flight = free_flights_.back().release();
  free_flights_.pop_back();
  return flight;
}

void RedisCluster::recycle(Flight* flight) {
  flight->call = nullptr;
  flight->node = nullptr;
  flight->node_call = nullptr;
  if (free_flights_.size() < kMaxPooled) {
    free_flights_.emplace_back(flight);
  } else {
    delete flight;
  }
}

void RedisCluster::arm_retry() {
  if (retry_timer_ && !parked_.empty() &&
      !uv_is_active(reinterpret_cast<uv_handle_t*>(retry_timer_.get()))) {
    uv_timer_start(
        retry_timer_.get(), [](uv_timer_t* t) { owner_of<RedisCluster>(t)->retry_parked(); },
        kRetryMs, 0);
  }
}

void RedisCluster::retry_parked() {
  std::vector<Parked> parked;
  parked.swap(parked_);
  const uint64_t now = uv_now(loop_);
  for (const Parked& entry : parked) {
    // A waiter called back below may have cancelled, or another part failed, this call.
    const bool live = std::any_of(calls_.begin(), calls_.end(), [&entry](const Call* call) {
      return call == entry.call && call->serial == entry.serial;
    });
    if (!live) {
      continue;
    }
    if (now >= entry.call->deadline_ms) {
      fail(*entry.call);
      continue;
    }
    resend(*entry.call, entry.part);
  }
  arm_retry();
}

// ---------------------------------------------------------------------------------------------
// The slot map

void RedisCluster::refresh_map() {
  if (stopped_) {
    return;
  }
  map_wanted_ = true;
  if (map_question_out_ || !map_client_->ready()) {
    return;  // the answer, or the map connection's return, asks again
  }
  const uint64_t now = uv_now(loop_);
  if (map_ && now < last_map_answer_ms_ + kMinMapIntervalMs) {
    uv_timer_start(
        map_timer_.get(), [](uv_timer_t* t) { owner_of<RedisCluster>(t)->on_map_timer(); },
        last_map_answer_ms_ + kMinMapIntervalMs - now, 0);
    return;
  }
  std::vector<RedisCommand> question;
  question.push_back({{"CLUSTER", "SHARDS"}});
  map_question_out_ = map_client_->submit(std::move(question), *this, kShardsTag) != nullptr;
  map_wanted_ = !map_question_out_;  // else the map connection's return asks
}

void RedisCluster::on_map_timer() {
  retired_.clear();
  refresh_map();
}

void RedisCluster::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  map_question_out_ = false;
  if (replies.empty()) {
    map_wanted_ = true;  // the map connection was lost; it asks again when it is back
    return;
  }
  const redisReply& reply = *replies.front();
  const HostPort asked = map_client_->server();
  if (tag == kShardsTag && is_error(&reply)) {
    // Redis before 7.0 has no CLUSTER SHARDS.
    std::vector<RedisCommand> question;
    question.push_back({{"CLUSTER", "SLOTS"}});
    map_question_out_ = map_client_->submit(std::move(question), *this, kSlotsTag) != nullptr;
    map_wanted_ = !map_question_out_;
    return;
  }
  std::string error;
  std::optional<SlotMap> map = tag == kShardsTag
                                   ? SlotMap::from_shards(reply, asked, settings_.url.tls, error)
                                   : SlotMap::from_slots(reply, asked, error);
  last_map_answer_ms_ = uv_now(loop_);
  if (map) {
    apply_map(std::move(*map), asked);
  } else if (!logged_map_problem_) {
    spdlog::warn("redis {}: {} gave no usable slot map: {}", settings_.url.to_redacted_string(),
                 asked.to_string(), error);
    logged_map_problem_ = true;
  }
  if (stopped_) {
    return;
  }
  if (map_wanted_) {
    refresh_map();
  } else {
    uv_timer_start(
        map_timer_.get(), [](uv_timer_t* t) { owner_of<RedisCluster>(t)->on_map_timer(); },
        next_map_refresh_ms(), 0);
  }
}

uint64_t RedisCluster::next_map_refresh_ms() {
  if (map_settled()) {
    unsettled_answers_ = 0;
    return kMapRefreshMs;
  }
  const uint32_t beyond =
      unsettled_answers_ < kQuickMapAnswers ? 0 : unsettled_answers_ - kQuickMapAnswers + 1;
  ++unsettled_answers_;
  return std::min(kUnsettledMapRefreshMs << std::min<uint32_t>(beyond, 5), kMapRefreshMs);
}

bool RedisCluster::map_settled() const {
  if (!map_ || map_->covered_slots() != static_cast<size_t>(kClusterSlots)) {
    return false;
  }
  return std::all_of(nodes_.begin(), nodes_.end(),
                     [](const auto& node) { return node.second->ready(); });
}

void RedisCluster::apply_map(SlotMap map, const HostPort& asked) {
  if (map_) {
    for (const ClusterShard& shard : map.shards()) {
      if (map_->is_primary(shard.primary)) {
        continue;
      }
      if (const ClusterShard* before = map_->shard_with_replica(shard.primary)) {
        announce_promotion(before->primary, shard.primary);
      }
    }
  }
  for (auto it = promoted_.begin(); it != promoted_.end();) {
    // Demoted since (a later failover back): its next promotion is news again.
    const bool primary_now =
        std::any_of(map.shards().begin(), map.shards().end(),
                    [&it](const ClusterShard& shard) { return shard.primary.to_string() == *it; });
    it = primary_now ? std::next(it) : promoted_.erase(it);
  }
  const size_t covered = map.covered_slots();
  const bool first = !map_;
  const size_t covered_before = first ? 0 : map_->covered_slots();
  map_ = std::move(map);
  logged_map_problem_ = false;
  if (covered != static_cast<size_t>(kClusterSlots) && (first || covered != covered_before)) {
    spdlog::warn(
        "redis {}: {} of {} slots have a primary, by {}; keys of the others go without Redis",
        settings_.url.to_redacted_string(), covered, kClusterSlots, asked.to_string());
  } else if (first || covered != covered_before) {
    spdlog::info("redis {}: slot map from {}: {} primaries", settings_.url.to_redacted_string(),
                 asked.to_string(), map_->shards().size());
  }

  std::vector<HostPort> sources = settings_.url.cluster_seeds;
  for (const ClusterShard& shard : map_->shards()) {
    ensure_node(shard.primary);
    sources.push_back(shard.primary);
    sources.insert(sources.end(), shard.replicas.begin(), shard.replicas.end());
  }
  map_sources_->set_addresses(std::move(sources));

  // Out of nodes_ first, all of them: a waiter woken by one's stop() must not be routed to
  // another that is leaving too.
  std::vector<std::unique_ptr<RedisNode>> leaving;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (map_->is_primary(it->first)) {
      ++it;
      continue;
    }
    leaving.push_back(std::move(it->second));
    it = nodes_.erase(it);
  }
  for (std::unique_ptr<RedisNode>& node : leaving) {
    add_stats(retired_stats_, node->stats());
    node->stop();  // fails its calls: their parts cannot be answered by a node out of the map
    for (const auto& removed : node_removed_) {
      removed(*node);
    }
    retired_.push_back(std::move(node));
  }
  if (!parked_.empty()) {
    arm_retry();
  }
}

void RedisCluster::announce_promotion(const HostPort& old_primary, const HostPort& new_primary) {
  // Once per promotion: a node asked for the map that has not heard of it yet would list the
  // new primary as a replica again, and the next MOVED would announce it twice.
  if (!promoted_.insert(new_primary.to_string()).second) {
    return;
  }
  const std::string why = "the Redis Cluster primary " + old_primary.to_string() +
                          " was replaced by its replica " + new_primary.to_string();
  for (const auto& callback : on_primary_moved_) {
    callback(why);
  }
}

}  // namespace cachecar
