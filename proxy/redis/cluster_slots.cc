#include "redis/cluster_slots.h"

#include <algorithm>
#include <charconv>

#include "http/message.h"

namespace cachecar {
namespace {

constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = make_crc16_table();

uint16_t crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (const char c : bytes) {
    const auto index = static_cast<uint8_t>((crc >> 8) ^ static_cast<uint8_t>(c));
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[index]);
  }
  return crc;
}

bool is_array(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ARRAY;
}

// RESP2 renders RESP3 maps as flat arrays: name, value, name, value ...
const redisReply* field(const redisReply& map, std::string_view name) {
  for (size_t i = 0; i + 1 < map.elements; i += 2) {
    if (reply_text(map.element[i]) == name) {
      return map.element[i + 1];
    }
  }
  return nullptr;
}

std::optional<uint16_t> port_of(const redisReply* reply) {
  const auto value = reply_integer(reply);
  if (!value || *value <= 0 || *value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(*value);
}

// A node's address as the cluster reports it; an empty or "?" host is the one asked.
HostPort reported_address(std::string_view host, uint16_t port, const HostPort& asked) {
  if (host.empty() || host == "?") {
    return HostPort{asked.host, port};
  }
  return HostPort{std::string(host), port};
}

bool same_address(const HostPort& a, const HostPort& b) {
  return a.port == b.port && a.host == b.host;
}

}  // namespace

int key_hash_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & (kClusterSlots - 1);
}

std::string_view slot_hash_tag(int slot) {
  // Built at first use: ~110,000 CRCs of at most six bytes, well under a millisecond.
  static const std::vector<std::string> tags = [] {
    std::vector<std::string> table(kClusterSlots);
    int found = 0;
    for (uint32_t number = 0; found < kClusterSlots; ++number) {
      std::string tag = std::to_string(number);
      std::string& slot_tag = table[crc16(tag) & (kClusterSlots - 1)];
      if (slot_tag.empty()) {
        slot_tag = std::move(tag);
        ++found;
      }
    }
    return table;
  }();
  return tags[static_cast<size_t>(slot)];
}

uint16_t SlotMap::shard_index(const HostPort& primary) {
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (same_address(shards_[i].primary, primary)) {
      return static_cast<uint16_t>(i);
    }
  }
  shards_.push_back(ClusterShard{primary, {}});
  return static_cast<uint16_t>(shards_.size() - 1);
}

std::optional<SlotMap> SlotMap::from_shards(const redisReply& reply, const HostPort& asked,
                                            bool tls, std::string& error) {
  if (reply.type != REDIS_REPLY_ARRAY) {
    error = "CLUSTER SHARDS answered " + std::string(reply_text(&reply));
    return std::nullopt;
  }
  SlotMap map;
  map.owner_.fill(kNoShard);
  for (size_t s = 0; s < reply.elements; ++s) {
    const redisReply* shard = reply.element[s];
    const redisReply* slots = is_array(shard) ? field(*shard, "slots") : nullptr;
    const redisReply* nodes = is_array(shard) ? field(*shard, "nodes") : nullptr;
    if (!is_array(slots) || !is_array(nodes)) {
      error = "CLUSTER SHARDS: a shard without slots or nodes";
      return std::nullopt;
    }
    if (slots->elements == 0) {
      continue;  // a shard that serves nothing (a new or emptied primary)
    }
    std::optional<HostPort> primary;
    bool primary_online = false;
    std::vector<HostPort> replicas;
    for (size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      if (!is_array(node)) {
        continue;
      }
      const redisReply* tls_port = field(*node, "tls-port");
      const auto port = port_of(tls && tls_port != nullptr ? tls_port : field(*node, "port"));
      if (!port) {
        continue;
      }
      const redisReply* endpoint = field(*node, "endpoint");
      const HostPort address = reported_address(
          reply_text(endpoint != nullptr ? endpoint : field(*node, "ip")), *port, asked);
      const bool online = reply_text(field(*node, "health")) == "online";
      if (reply_text(field(*node, "role")) == "master") {
        // A failed primary is listed until its replica takes over: prefer the live one.
        if (!primary || (online && !primary_online)) {
          primary = address;
          primary_online = online;
        }
      } else {
        replicas.push_back(address);
      }
    }
    if (!primary) {
      continue;
    }
    const uint16_t index = map.shard_index(*primary);
    for (HostPort& replica : replicas) {
      map.shards_[index].replicas.push_back(std::move(replica));
    }
    for (size_t i = 0; i + 1 < slots->elements; i += 2) {
      const auto first = reply_integer(slots->element[i]);
      const auto last = reply_integer(slots->element[i + 1]);
      if (!first || !last || *first < 0 || *last >= kClusterSlots || *first > *last) {
        error = "CLUSTER SHARDS: a slot range out of bounds";
        return std::nullopt;
      }
      std::fill(map.owner_.begin() + *first, map.owner_.begin() + *last + 1, index);
    }
  }
  return map;
}

std::optional<SlotMap> SlotMap::from_slots(const redisReply& reply, const HostPort& asked,
                                           std::string& error) {
  if (reply.type != REDIS_REPLY_ARRAY) {
    error = "CLUSTER SLOTS answered " + std::string(reply_text(&reply));
    return std::nullopt;
  }
  SlotMap map;
  map.owner_.fill(kNoShard);
  for (size_t r = 0; r < reply.elements; ++r) {
    const redisReply* range = reply.element[r];
    if (!is_array(range) || range->elements < 3 || !is_array(range->element[2])) {
      error = "CLUSTER SLOTS: a range without a primary";
      return std::nullopt;
    }
    const auto first = reply_integer(range->element[0]);
    const auto last = reply_integer(range->element[1]);
    if (!first || !last || *first < 0 || *last >= kClusterSlots || *first > *last) {
      error = "CLUSTER SLOTS: a slot range out of bounds";
      return std::nullopt;
    }
    std::vector<HostPort> nodes;
    for (size_t n = 2; n < range->elements; ++n) {
      const redisReply* node = range->element[n];
      if (!is_array(node) || node->elements < 2) {
        continue;
      }
      const auto port = port_of(node->element[1]);
      if (port) {
        nodes.push_back(reported_address(reply_text(node->element[0]), *port, asked));
      }
    }
    if (nodes.empty()) {
      continue;
    }
    const uint16_t index = map.shard_index(nodes.front());
    for (size_t n = 1; n < nodes.size(); ++n) {
      auto& replicas = map.shards_[index].replicas;
      if (std::none_of(replicas.begin(), replicas.end(),
                       [&](const HostPort& known) { return same_address(known, nodes[n]); })) {
        replicas.push_back(nodes[n]);
      }
    }
    std::fill(map.owner_.begin() + *first, map.owner_.begin() + *last + 1, index);
  }
  return map;
}

const ClusterShard* SlotMap::shard_of(int slot) const {
  if (slot < 0 || slot >= kClusterSlots || owner_[static_cast<size_t>(slot)] == kNoShard) {
    return nullptr;
  }
  return &shards_[owner_[static_cast<size_t>(slot)]];
}

bool SlotMap::is_primary(const HostPort& node) const {
  return std::any_of(shards_.begin(), shards_.end(), [&node](const ClusterShard& shard) {
    return same_address(shard.primary, node);
  });
}

const ClusterShard* SlotMap::shard_with_replica(const HostPort& node) const {
  for (const ClusterShard& shard : shards_) {
    if (std::any_of(shard.replicas.begin(), shard.replicas.end(),
                    [&node](const HostPort& replica) { return same_address(replica, node); })) {
      return &shard;
    }
  }
  return nullptr;
}

void SlotMap::move_slot(int slot, const HostPort& primary) {
  if (slot >= 0 && slot < kClusterSlots) {
    owner_[static_cast<size_t>(slot)] = shard_index(primary);
  }
}

size_t SlotMap::covered_slots() const {
  return static_cast<size_t>(std::count_if(owner_.begin(), owner_.end(),
                                           [](uint16_t owner) { return owner != kNoShard; }));
}

namespace {

bool command_is(const RedisCommand& command, std::string_view name) {
  return command.script == nullptr && !command.args.empty() && iequals(command.args[0], name);
}

}  // namespace

std::optional<int> command_slot(const RedisCommand& command) {
  if (command.script != nullptr) {
    if (command.num_keys <= 0 || command.args.empty()) {
      return std::nullopt;
    }
    return key_hash_slot(command.args[0]);
  }
  static constexpr std::string_view kKeyless[] = {
      "PING",      "CLUSTER",   "SCRIPT",     "ROLE",       "INFO",   "TIME",
      "ECHO",      "ASKING",    "CLIENT",     "AUTH",       "SELECT", "HELLO",
      "QUIT",      "DBSIZE",    "FLUSHALL",   "FLUSHDB",    "CONFIG", "READONLY",
      "READWRITE", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE"};
  for (const std::string_view name : kKeyless) {
    if (command_is(command, name)) {
      return std::nullopt;
    }
  }
  if (command.args.size() < 2) {
    return std::nullopt;
  }
  return key_hash_slot(command.args[1]);
}

SplitReply split_kind(const RedisCommand& command) {
  if (command.args.size() <= 2) {
    return SplitReply::None;
  }
  if (command_is(command, "MGET")) {
    return SplitReply::Elements;
  }
  if (command_is(command, "DEL") || command_is(command, "UNLINK") ||
      command_is(command, "EXISTS")) {
    return SplitReply::Sum;
  }
  return SplitReply::None;
}

std::optional<Redirection> parse_redirection(const redisReply* reply) {
  if (!is_error(reply)) {
    return std::nullopt;
  }
  std::string_view text = reply_text(reply);
  Redirection redirection;
  if (text.starts_with("ASK ")) {
    redirection.ask = true;
    text.remove_prefix(4);
  } else if (text.starts_with("MOVED ")) {
    text.remove_prefix(6);
  } else {
    return std::nullopt;
  }
  const size_t space = text.find(' ');
  const size_t colon = text.rfind(':');
  if (space == std::string_view::npos || colon == std::string_view::npos || colon < space) {
    return std::nullopt;
  }
  const std::string_view slot = text.substr(0, space);
  const std::string_view port = text.substr(colon + 1);
  std::string_view host = text.substr(space + 1, colon - space - 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port_number = 0;
  const auto slot_parse = std::from_chars(slot.data(), slot.data() + slot.size(), redirection.slot);
  const auto port_parse = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (slot_parse.ec != std::errc() || slot_parse.ptr != slot.data() + slot.size() ||
      port_parse.ec != std::errc() || port_parse.ptr != port.data() + port.size() ||
      redirection.slot < 0 || redirection.slot >= kClusterSlots || port_number == 0 ||
      port_number > 65535) {
    return std::nullopt;
  }
  redirection.node = HostPort{std::string(host), static_cast<uint16_t>(port_number)};
  return redirection;
}

}  // namespace cachecar
