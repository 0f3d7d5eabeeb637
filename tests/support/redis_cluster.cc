#include "support/redis_cluster.h"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "support/free_port.h"

namespace cachecar::test {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kSlots = 16384;
constexpr int kBusPortAttempts = 3;
constexpr int kMaxRedirects = 16;
// Two nodes can send a client back and forth with MOVED while a slot changes hands; a client
// backs off and tries again, and so do we, by this much more each time.
constexpr auto kRedirectBackoff = 5ms;
constexpr auto kOwnerTimeout = 5s;
constexpr auto kPipelineTimeout = 10s;
constexpr auto kCreateTimeout = 60s;
constexpr auto kReshardTimeout = 120s;
constexpr auto kPromotionTimeout = 30s;
constexpr auto kMigrateTimeoutMs = "5000";
constexpr auto kPollInterval = 50ms;
constexpr int kOutputTailLines = 30;

std::string endpoint(int port) { return "127.0.0.1:" + std::to_string(port); }

template <typename Number>
Number parse_number(std::string_view text, std::string_view what) {
  Number value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("redis cluster: malformed " + std::string(what) + " '" +
                             std::string(text) + "'");
  }
  return value;
}

// The port of "127.0.0.1:6379" (also with "@bus" or ",hostname" after it, as CLUSTER NODES has).
int port_of(std::string_view address) {
  const size_t colon = address.rfind(':', address.find_first_of("@,"));
  if (colon == std::string_view::npos) {
    throw std::runtime_error("redis cluster: no port in '" + std::string(address) + "'");
  }
  address.remove_prefix(colon + 1);
  return parse_number<int>(address.substr(0, address.find_first_of("@,")), "port");
}

void expect_ok(const RespReply& reply, const std::string& what) {
  if (reply.type != RespReply::Type::SimpleString || reply.text != "OK") {
    throw std::runtime_error("redis cluster: " + what + ": " + reply.render());
  }
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, separator)) {
    if (!part.empty() && part.back() == '\r') {
      part.pop_back();
    }
    if (!part.empty()) {
      parts.push_back(part);
    }
  }
  return parts;
}

// Calls `ready` every kPollInterval until it returns true; a runtime_error from it (a node that
// is restarting, say) counts as not yet. Throws, naming `what`, at the timeout.
void wait_for(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
              const std::string& what) {
  const auto deadline = Clock::now() + timeout;
  std::string last_error;
  while (true) {
    try {
      if (ready()) {
        return;
      }
    } catch (const std::runtime_error& error) {
      last_error = error.what();
    }
    if (Clock::now() >= deadline) {
      throw std::runtime_error("redis cluster: timed out after " + std::to_string(timeout.count()) +
                               " ms waiting for " + what +
                               (last_error.empty() ? "" : " (last error: " + last_error + ")"));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// ---- Views of the cluster -------------------------------------------------------------------

struct Role {
  bool primary = false;
  int primary_port = 0;  // replicas only
  bool link_up = false;  // replicas only: "connected" to the primary
};

Role role_of(RedisServer& node) {
  const RespReply reply = node.command_reply({"ROLE"});
  if (reply.type != RespReply::Type::Array || reply.elements.empty()) {
    throw std::runtime_error("redis " + endpoint(node.port()) + " ROLE: " + reply.render());
  }
  Role role;
  const std::string& name = reply.elements[0].text;
  if (name == "master") {
    role.primary = true;
  } else if (name == "slave" && reply.elements.size() >= 4) {
    // ["slave", primary ip, primary port (integer), link state, offset]
    role.primary_port = static_cast<int>(reply.elements[2].integer);
    role.link_up = reply.elements[3].text == "connected";
  } else {
    throw std::runtime_error("redis " + endpoint(node.port()) + " ROLE: " + reply.render());
  }
  return role;
}

struct SlotRange {
  int first = 0;
  int last = 0;
  int primary_port = 0;
  bool operator==(const SlotRange&) const = default;
};

// The node's view of who serves what, from CLUSTER SLOTS, ordered by slot. Replicas are left out:
// the views of them legitimately differ for a while (a replica known to have failed is hidden).
std::vector<SlotRange> slot_map(RedisServer& node) {
  const RespReply reply = node.command_reply({"CLUSTER", "SLOTS"});
  if (reply.type != RespReply::Type::Array) {
    throw std::runtime_error("redis " + endpoint(node.port()) +
                             " CLUSTER SLOTS: " + reply.render());
  }
  std::vector<SlotRange> map;
  for (const RespReply& range : reply.elements) {
    // [first, last, [ip, port, id, ...] of the primary, replicas...]
    if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) {
      throw std::runtime_error("redis " + endpoint(node.port()) +
                               " CLUSTER SLOTS: malformed range " + range.render());
    }
    map.push_back({static_cast<int>(range.elements[0].integer),
                   static_cast<int>(range.elements[1].integer),
                   static_cast<int>(range.elements[2].elements[1].integer)});
  }
  std::sort(map.begin(), map.end(),
            [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
  return map;
}

std::string render(const std::vector<SlotRange>& map) {
  std::string out;
  for (const SlotRange& range : map) {
    out.append(out.empty() ? "" : " ")
        .append(std::to_string(range.first))
        .append("-")
        .append(std::to_string(range.last))
        .append("@")
        .append(std::to_string(range.primary_port));
  }
  return out;
}

struct SelfClaim {
  bool primary = false;
  long long config_epoch = 0;
  std::vector<std::pair<int, int>> slots;  // ranges it owns, by its own word
};

// The node's "myself" line of CLUSTER NODES:
// <id> <ip:port@bus> <flags> <primary id> <ping> <pong> <epoch> <link> <slot or range>...
SelfClaim self_claim(RedisServer& node) {
  for (const std::string& line : split(node.command({"CLUSTER", "NODES"}), '\n')) {
    const std::vector<std::string> fields = split(line, ' ');
    if (fields.size() < 8 || fields[2].find("myself") == std::string::npos) {
      continue;
    }
    SelfClaim claim;
    claim.primary = fields[2].find("master") != std::string::npos;
    claim.config_epoch = parse_number<long long>(fields[6], "config epoch");
    for (size_t i = 8; i < fields.size(); ++i) {
      if (fields[i].front() == '[') {
        continue;  // "[slot->-id]" / "[slot-<-id]": migrating or importing, not owned
      }
      const size_t dash = fields[i].find('-');
      const int first = parse_number<int>(fields[i].substr(0, dash), "slot");
      const int last =
          dash == std::string::npos ? first : parse_number<int>(fields[i].substr(dash + 1), "slot");
      claim.slots.emplace_back(first, last);
    }
    return claim;
  }
  throw std::runtime_error("redis " + endpoint(node.port()) + " CLUSTER NODES: no 'myself' line");
}

}  // namespace

RedisCluster::RedisCluster(int primaries, int replicas_per_primary,
                           std::vector<std::string> extra_args, int node_timeout_ms,
                           std::function<std::vector<std::string>(size_t node)> node_args)
    : replicas_per_primary_(replicas_per_primary), dir_("cachecar-cluster-") {
  if (primaries < 3 || replicas_per_primary < 0 || node_timeout_ms <= 0) {
    throw std::invalid_argument(
        "RedisCluster: needs primaries >= 3, replicas_per_primary >= 0 and node_timeout_ms > 0");
  }
  for (size_t i = 0; i + 1 < extra_args.size(); ++i) {
    if (extra_args[i] == "--requirepass") {
      password_ = extra_args[i + 1];
    }
  }
  const size_t count =
      static_cast<size_t>(primaries) * static_cast<size_t>(1 + replicas_per_primary);
  for (size_t i = 0; i < count; ++i) {
    // RedisServer retries on a new client port by itself, but keeps its arguments, so a bus
    // port that someone else took meanwhile is only escaped by building a new server.
    std::string failures;
    for (int attempt = 0; attempt < kBusPortAttempts && nodes_.size() == i; ++attempt) {
      const std::string bus_port = std::to_string(free_tcp_port());
      std::vector<std::string> args = {
          "--cluster-enabled", "yes", "--cluster-port", bus_port,
          // Named after the bus port too, so a retry never picks up a failed attempt's identity.
          "--cluster-config-file",
          dir_.path() + "/nodes-" + std::to_string(i) + "-" + bus_port + ".conf",
          "--cluster-node-timeout", std::to_string(node_timeout_ms),
          // Redis 7 syncs replicas diskless and waits 5 s for more replicas to share the
          // transfer: that would add 5 s to every cluster with replicas.
          "--repl-diskless-sync-delay", "0",
          // A replica that has not heard from its primary for 10 node timeouts refuses to be
          // promoted; on a busy CI machine that would leave slots unserved for good.
          "--cluster-replica-validity-factor", "0"};
      if (!password_.empty()) {
        args.insert(args.end(), {"--masterauth", password_});
      }
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      if (node_args) {
        const std::vector<std::string> own = node_args(i);
        args.insert(args.end(), own.begin(), own.end());
      }
      try {
        nodes_.push_back(std::make_unique<RedisServer>(std::move(args)));
      } catch (const std::runtime_error& error) {
        failures += "--- bus port " + bus_port + ": " + error.what() + "\n";
      }
    }
    if (nodes_.size() == i) {
      throw std::runtime_error("RedisCluster: node " + std::to_string(i) + " did not start:\n" +
                               failures);
    }
  }

  std::vector<std::string> args = {"--cluster", "create"};
  for (const auto& node : nodes_) {
    args.push_back(endpoint(node->port()));
  }
  args.insert(args.end(),
              {"--cluster-replicas", std::to_string(replicas_per_primary), "--cluster-yes"});
  const std::unique_ptr<ChildProcess> cli = start_cli(std::move(args));
  // Only the exit code tells: redis-cli's closing check may print "[ERR] Nodes don't agree
  // about configuration!" while gossip is still spreading, and exit 0 all the same; the wait
  // below is the real check.
  const std::optional<int> code = cli->wait_exit(kCreateTimeout);
  if (code != 0) {
    throw std::runtime_error("RedisCluster: redis-cli --cluster create " +
                             (code ? "exited with " + std::to_string(*code) : "timed out") + ":\n" +
                             tail_lines(cli->output(), kOutputTailLines));
  }
  wait_until_stable();
}

// Member order does the work: the reshard child dies first, then the nodes, then their files.
RedisCluster::~RedisCluster() = default;

std::string RedisCluster::url() const {
  std::string out = "redis+cluster://";
  for (const RedisServer* primary : primaries()) {
    out.append(out.back() == '/' ? "" : ",").append(endpoint(primary->port()));
  }
  return out;
}

std::vector<RedisServer*> RedisCluster::live_nodes() const {
  std::vector<RedisServer*> live;
  for (const auto& node : nodes_) {
    if (node->running()) {
      live.push_back(node.get());
    }
  }
  return live;
}

RedisServer& RedisCluster::any_live_node() const {
  const std::vector<RedisServer*> live = live_nodes();
  if (live.empty()) {
    throw std::runtime_error("RedisCluster: no node is running");
  }
  return *live.front();
}

RedisServer* RedisCluster::node_on_port(int port) const {
  for (const auto& node : nodes_) {
    if (node->port() == port) {
      return node.get();
    }
  }
  return nullptr;
}

std::vector<RedisServer*> RedisCluster::primaries() const {
  std::vector<RedisServer*> found;
  for (RedisServer* node : live_nodes()) {
    if (role_of(*node).primary) {
      found.push_back(node);
    }
  }
  return found;
}

std::vector<RedisServer*> RedisCluster::replicas_of(const RedisServer& primary) const {
  std::vector<RedisServer*> found;
  for (RedisServer* node : live_nodes()) {
    const Role role = role_of(*node);
    if (!role.primary && role.primary_port == primary.port()) {
      found.push_back(node);
    }
  }
  return found;
}

std::string RedisCluster::node_id(RedisServer& node) { return node.command({"CLUSTER", "MYID"}); }

int RedisCluster::key_slot(const std::string& key) {
  const RespReply reply = any_live_node().command_reply({"CLUSTER", "KEYSLOT", key});
  if (reply.type != RespReply::Type::Integer) {
    throw std::runtime_error("RedisCluster: CLUSTER KEYSLOT " + key + ": " + reply.render());
  }
  return static_cast<int>(reply.integer);
}

RedisServer& RedisCluster::owner_of_slot(int slot) const {
  // While a slot changes hands, nobody may claim it for a moment: redis-cli sends SETSLOT NODE
  // to the primaries one after another, and the source may let the slot go before the target
  // has been told to take it.
  RedisServer* owner = nullptr;
  wait_for(
      [&] {
        long long owner_epoch = -1;
        for (RedisServer* node : live_nodes()) {
          const SelfClaim claim = self_claim(*node);
          const bool owns = std::any_of(
              claim.slots.begin(), claim.slots.end(),
              [slot](const auto& range) { return range.first <= slot && slot <= range.second; });
          if (claim.primary && owns && claim.config_epoch > owner_epoch) {
            owner = node;
            owner_epoch = claim.config_epoch;
          }
        }
        return owner != nullptr;
      },
      kOwnerTimeout, "a live primary to own slot " + std::to_string(slot));
  return *owner;
}

RedisServer& RedisCluster::primary_for(const std::string& key) {
  return owner_of_slot(key_slot(key));
}

RespReply RedisCluster::command_reply_for_key(const std::string& key,
                                              const std::vector<std::string>& argv) {
  RedisServer* target = &primary_for(key);
  RespReply reply = target->command_reply(argv);
  for (int hop = 0; hop < kMaxRedirects && reply.type == RespReply::Type::Error; ++hop) {
    // "MOVED <slot> <ip>:<port>" or "ASK <slot> <ip>:<port>"
    const bool moved = reply.text.rfind("MOVED ", 0) == 0;
    const bool ask = reply.text.rfind("ASK ", 0) == 0;
    if (!moved && !ask) {
      break;
    }
    target = node_on_port(port_of(reply.text.substr(reply.text.rfind(' ') + 1)));
    if (target == nullptr) {
      throw std::runtime_error("RedisCluster: redirected outside the cluster: " + reply.text);
    }
    std::this_thread::sleep_for(hop * kRedirectBackoff);
    reply = moved ? target->command_reply(argv)
                  : target->pipeline({{"ASKING"}, argv}, kPipelineTimeout).back();
  }
  return reply;
}

std::string RedisCluster::command_for_key(const std::string& key,
                                          const std::vector<std::string>& argv) {
  return command_reply_for_key(key, argv).render();
}

std::vector<RespReply> RedisCluster::pipeline_for_key(
    const std::string& key, const std::vector<std::vector<std::string>>& commands) {
  return primary_for(key).pipeline(commands, kPipelineTimeout);
}

std::optional<std::string> RedisCluster::get(const std::string& key) {
  RespReply reply = command_reply_for_key(key, {"GET", key});
  if (reply.type == RespReply::Type::Nil) {
    return std::nullopt;
  }
  if (reply.type != RespReply::Type::Bulk) {
    throw std::runtime_error("RedisCluster: GET " + key + ": " + reply.render());
  }
  return std::move(reply.text);
}

long long RedisCluster::total_keys() {
  long long total = 0;
  for (RedisServer* primary : primaries()) {
    const RespReply reply = primary->command_reply({"DBSIZE"});
    if (reply.type != RespReply::Type::Integer) {
      throw std::runtime_error("RedisCluster: DBSIZE: " + reply.render());
    }
    total += reply.integer;
  }
  return total;
}

void RedisCluster::flush_all() {
  for (RedisServer* primary : primaries()) {
    expect_ok(primary->command_reply({"FLUSHALL"}), "FLUSHALL on " + endpoint(primary->port()));
  }
}

std::unique_ptr<ChildProcess> RedisCluster::start_cli(std::vector<std::string> args) const {
  if (!password_.empty()) {
    args.insert(args.begin(), {"-a", password_, "--no-auth-warning"});
  }
  ChildProcessOptions options;
  options.env = {{"TERM", "dumb"}};  // redis-cli colours its --cluster output on an xterm
  return std::make_unique<ChildProcess>("redis-cli", std::move(args), std::move(options));
}

std::vector<std::string> RedisCluster::reshard_args(RedisServer& from, RedisServer& to, int slots) {
  if (slots <= 0) {
    throw std::invalid_argument("RedisCluster: reshard needs slots > 0");
  }
  if (reshard_) {
    throw std::logic_error("RedisCluster: a reshard is already running");
  }
  if (migration_) {
    throw std::logic_error(
        "RedisCluster: finish_migration() first; redis-cli refuses to reshard "
        "a cluster with an open slot");
  }
  // redis-cli also refuses while the nodes disagree, which they briefly do after any change.
  wait_until_stable();
  return {"--cluster",           "reshard",      endpoint(from.port()), "--cluster-from",
          node_id(from),         "--cluster-to", node_id(to),           "--cluster-slots",
          std::to_string(slots), "--cluster-yes"};
}

void RedisCluster::reshard(RedisServer& from, RedisServer& to, int slots) {
  start_reshard(from, to, slots);
  wait_reshard();
}

void RedisCluster::start_reshard(RedisServer& from, RedisServer& to, int slots) {
  reshard_ = start_cli(reshard_args(from, to, slots));
}

void RedisCluster::wait_reshard() {
  if (!reshard_) {
    throw std::logic_error("RedisCluster: wait_reshard() without start_reshard()");
  }
  const std::unique_ptr<ChildProcess> cli = std::move(reshard_);
  const std::optional<int> code = cli->wait_exit(kReshardTimeout);
  if (code != 0) {
    throw std::runtime_error("RedisCluster: redis-cli --cluster reshard " +
                             (code ? "exited with " + std::to_string(*code) : "timed out") + ":\n" +
                             tail_lines(cli->output(), kOutputTailLines));
  }
  wait_until_stable();
}

void RedisCluster::migrate_keys(RedisServer& from, RedisServer& to,
                                const std::vector<std::string>& keys) {
  // MIGRATE host port "" db timeout [AUTH password] KEYS key...: atomic per call.
  std::vector<std::string> argv = {"MIGRATE", "127.0.0.1", std::to_string(to.port()),
                                   "",        "0",         kMigrateTimeoutMs};
  if (!password_.empty()) {
    argv.insert(argv.end(), {"AUTH", password_});
  }
  argv.push_back("KEYS");
  argv.insert(argv.end(), keys.begin(), keys.end());
  const RespReply reply = from.command_reply(argv);
  if (reply.render() != "OK" && reply.render() != "NOKEY") {
    throw std::runtime_error("RedisCluster: MIGRATE from " + endpoint(from.port()) + " to " +
                             endpoint(to.port()) + ": " + reply.render());
  }
}

void RedisCluster::begin_migration(int slot, RedisServer& from, RedisServer& to,
                                   const std::vector<std::string>& keys_to_move) {
  if (migration_ || reshard_) {
    throw std::logic_error("RedisCluster: a migration or reshard is already under way");
  }
  for (const std::string& key : keys_to_move) {
    if (key_slot(key) != slot) {
      throw std::invalid_argument("RedisCluster: key '" + key + "' is not in slot " +
                                  std::to_string(slot));
    }
  }
  const std::string slot_text = std::to_string(slot);
  // Importing first: once the source says MIGRATING, clients are sent to the target with ASK.
  expect_ok(to.command_reply({"CLUSTER", "SETSLOT", slot_text, "IMPORTING", node_id(from)}),
            "SETSLOT " + slot_text + " IMPORTING on " + endpoint(to.port()));
  expect_ok(from.command_reply({"CLUSTER", "SETSLOT", slot_text, "MIGRATING", node_id(to)}),
            "SETSLOT " + slot_text + " MIGRATING on " + endpoint(from.port()));
  migration_ = Migration{slot, &from, &to};
  if (!keys_to_move.empty()) {
    migrate_keys(from, to, keys_to_move);
  }
}

void RedisCluster::finish_migration() {
  if (!migration_) {
    throw std::logic_error("RedisCluster: finish_migration() without begin_migration()");
  }
  const Migration migration = *migration_;
  const std::string slot_text = std::to_string(migration.slot);
  while (true) {
    const RespReply keys =
        migration.from->command_reply({"CLUSTER", "GETKEYSINSLOT", slot_text, "100"});
    if (keys.type != RespReply::Type::Array) {
      throw std::runtime_error("RedisCluster: CLUSTER GETKEYSINSLOT: " + keys.render());
    }
    if (keys.elements.empty()) {
      break;
    }
    std::vector<std::string> names;
    for (const RespReply& key : keys.elements) {
      names.push_back(key.text);
    }
    migrate_keys(*migration.from, *migration.to, names);
  }
  // The order Redis's cluster tutorial gives: the target first, so that the slot has an owner
  // that accepts its keys before the source starts sending clients away with MOVED.
  const std::string target_id = node_id(*migration.to);
  std::vector<RedisServer*> order = {migration.to, migration.from};
  for (RedisServer* primary : primaries()) {
    if (primary != migration.to && primary != migration.from) {
      order.push_back(primary);
    }
  }
  for (RedisServer* node : order) {
    expect_ok(node->command_reply({"CLUSTER", "SETSLOT", slot_text, "NODE", target_id}),
              "SETSLOT " + slot_text + " NODE on " + endpoint(node->port()));
  }
  migration_.reset();
  wait_until_stable();
}

RedisServer& RedisCluster::failover(RedisServer& primary) {
  if (replicas_per_primary_ < 1) {
    throw std::logic_error("RedisCluster: failover() needs replicas_per_primary >= 1");
  }
  // CLUSTER FAILOVER waits for the replica to catch up with its primary, so the link must be up.
  wait_until_stable();
  const std::vector<RedisServer*> replicas = replicas_of(primary);
  if (replicas.empty()) {
    throw std::runtime_error("RedisCluster: " + endpoint(primary.port()) + " has no replica");
  }
  RedisServer& replica = *replicas.front();
  expect_ok(replica.command_reply({"CLUSTER", "FAILOVER"}),
            "CLUSTER FAILOVER on " + endpoint(replica.port()));
  wait_for([&] { return role_of(replica).primary; }, kPromotionTimeout,
           "CLUSTER FAILOVER to promote " + endpoint(replica.port()));
  wait_until_stable();
  return replica;
}

RedisServer& RedisCluster::kill_primary(RedisServer& primary) {
  if (!role_of(primary).primary) {
    throw std::logic_error("RedisCluster: kill_primary(" + endpoint(primary.port()) +
                           "): not a primary");
  }
  const std::vector<RedisServer*> replicas = replicas_of(primary);
  if (replicas.empty()) {
    throw std::runtime_error("RedisCluster: " + endpoint(primary.port()) +
                             " has no replica to take over");
  }
  primary.kill();
  RedisServer* promoted = nullptr;
  wait_for(
      [&] {
        for (RedisServer* replica : replicas) {
          if (role_of(*replica).primary) {
            promoted = replica;
            return true;
          }
        }
        return false;
      },
      kPromotionTimeout, "a replica of killed " + endpoint(primary.port()) + " to be promoted");
  wait_until_stable();
  return *promoted;
}

std::string RedisCluster::stability_problem() const {
  const std::vector<RedisServer*> live = live_nodes();
  if (live.empty()) {
    return "no node is running";
  }
  std::vector<SlotRange> reference;
  for (RedisServer* node : live) {
    const std::string name = endpoint(node->port());
    if (node->command({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
      return name + " is not at cluster_state:ok";
    }
    const std::vector<SlotRange> map = slot_map(*node);
    if (node == live.front()) {
      reference = map;
      for (const SlotRange& range : map) {
        const RedisServer* primary = node_on_port(range.primary_port);
        if (primary == nullptr || !primary->running()) {
          return name + " has slots " + std::to_string(range.first) + "-" +
                 std::to_string(range.last) + " served by " + endpoint(range.primary_port) +
                 ", which is not running";
        }
      }
    } else if (map != reference) {
      return name + " sees slot map [" + render(map) + "] but " + endpoint(live.front()->port()) +
             " sees [" + render(reference) + "]";
    }
    const Role role = role_of(*node);
    if (!role.primary && !role.link_up) {
      return "replica " + name + " is not connected to its primary " + endpoint(role.primary_port);
    }
  }
  return "";
}

void RedisCluster::wait_until_stable(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string problem;
  while (true) {
    try {
      problem = stability_problem();
    } catch (const std::runtime_error& error) {
      problem = error.what();  // e.g. a paused node: not stable either
    }
    if (problem.empty()) {
      return;
    }
    if (Clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  std::string nodes;
  try {
    RedisServer& node = any_live_node();
    nodes =
        "\nCLUSTER NODES of " + endpoint(node.port()) + ":\n" + node.command({"CLUSTER", "NODES"});
  } catch (const std::runtime_error&) {
    // The message above says enough.
  }
  throw std::runtime_error("RedisCluster: not stable after " + std::to_string(timeout.count()) +
                           " ms: " + problem + nodes);
}

}  // namespace cachecar::test
