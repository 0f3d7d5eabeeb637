#pragma once
// Redis Cluster's key space, as data: which of the 16384 slots a key hashes to, which primary
// serves each slot (the slot map, read from CLUSTER SHARDS or CLUSTER SLOTS), and where each
// of our commands must go. Pure: no socket, so every rule is tested on its own.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/endpoints.h"
#include "redis/command.h"
#include "redis/reply.h"

namespace cachecar {

inline constexpr int kClusterSlots = 16384;

// CRC16 (XMODEM) of the key's hash tag, the text between its first '{' and the next '}' when
// that is not empty, else of the whole key; modulo 16384.
int key_hash_slot(std::string_view key);

// A short hash tag of `slot`'s own: "{" + slot_hash_tag(s) + "}" in a key puts it in slot s.
// The smallest decimal number that hashes there (at most six digits). For a value kept in
// every slot, such as the cache epoch, so that a key's copy is read with the key in one command.
// Requires: 0 <= slot < kClusterSlots.
std::string_view slot_hash_tag(int slot);

// One primary and the replicas that follow it.
struct ClusterShard {
  HostPort primary;
  std::vector<HostPort> replicas;
};

class SlotMap {
 public:
  // From a CLUSTER SHARDS reply (Redis 7). `asked` is the node that answered: a node that
  // does not know its own address reports it empty, meaning the one it was reached on.
  static std::optional<SlotMap> from_shards(const redisReply& reply, const HostPort& asked,
                                            bool tls, std::string& error);
  // From a CLUSTER SLOTS reply (every version).
  static std::optional<SlotMap> from_slots(const redisReply& reply, const HostPort& asked,
                                           std::string& error);

  // The shard serving `slot`, or nullptr when no primary serves it.
  const ClusterShard* shard_of(int slot) const;
  const std::vector<ClusterShard>& shards() const { return shards_; }
  bool is_primary(const HostPort& node) const;
  // The shard that lists `node` among its replicas, or nullptr.
  const ClusterShard* shard_with_replica(const HostPort& node) const;
  // A MOVED answer: `slot` is served by `primary` now.
  void move_slot(int slot, const HostPort& primary);
  size_t covered_slots() const;

 private:
  // The shard for `primary`, added when new.
  uint16_t shard_index(const HostPort& primary);

  static constexpr uint16_t kNoShard = 0xFFFF;
  std::vector<ClusterShard> shards_;
  std::array<uint16_t, kClusterSlots> owner_{};  // kNoShard or an index into shards_
};

// Where a command goes: the slot of its first key, or nullopt for a command without keys
// (PING, CLUSTER, SCRIPT ...), which any node answers.
std::optional<int> command_slot(const RedisCommand& command);

// MGET, DEL, UNLINK and EXISTS take keys of any slots and answer per key (MGET) or with a sum:
// a cluster sends one per slot and joins the answers.
enum class SplitReply { None, Elements, Sum };
SplitReply split_kind(const RedisCommand& command);

// A MOVED or ASK answer: the slot and the node to ask instead.
struct Redirection {
  bool ask = false;  // ASK: this once, after ASKING; MOVED: from now on
  int slot = 0;
  HostPort node;
};
std::optional<Redirection> parse_redirection(const redisReply* reply);

}  // namespace cachecar
