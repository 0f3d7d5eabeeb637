#include "redis/cluster_slots.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <set>
#include <string>

#include "unit_support.h"

namespace cachecar {
namespace {

// RESP text, built the way Redis writes it.
std::string bulk(std::string_view text) {
  return "$" + std::to_string(text.size()) + "\r\n" + std::string(text) + "\r\n";
}
std::string integer(long long value) { return ":" + std::to_string(value) + "\r\n"; }
std::string array(std::initializer_list<std::string> elements) {
  std::string out = "*" + std::to_string(elements.size()) + "\r\n";
  for (const std::string& element : elements) {
    out += element;
  }
  return out;
}

// One node of a CLUSTER SHARDS answer (Redis 7.0, RESP2: maps as flat arrays).
std::string shard_node(std::string_view ip, int port, std::string_view role,
                       std::string_view health = "online", int tls_port = 0) {
  std::string fields = bulk("id") + bulk("0123abcd") + bulk("port") + integer(port);
  int count = 2;
  if (tls_port != 0) {
    fields += bulk("tls-port") + integer(tls_port);
    ++count;
  }
  fields += bulk("ip") + bulk(ip) + bulk("endpoint") + bulk(ip) + bulk("role") + bulk(role) +
            bulk("replication-offset") + integer(72156) + bulk("health") + bulk(health);
  count += 5;
  return "*" + std::to_string(count * 2) + "\r\n" + fields;
}

std::string shard(std::initializer_list<std::string> slot_bounds,
                  std::initializer_list<std::string> nodes) {
  return array({bulk("slots"), array(slot_bounds), bulk("nodes"), array(nodes)});
}

const HostPort kAsked{"127.0.0.1", 7000};

TEST_CASE("key_hash_slot: CRC16 of the key or of its hash tag (the Cluster specification)") {
  struct Case {
    std::string_view key;
    int slot;
  };
  const Case cases[] = {
      {"123456789", 12739},  // the specification's CRC16 check value 0x31C3
      {"", 0},
      {"foo", 12182},
      {"{foo}", 12182},
      {"product:42", key_hash_slot("{product:42}")},
      {"gen:{product:42}", key_hash_slot("product:42")},
      {"{user1000}.following", key_hash_slot("user1000")},
      {"foo{}{bar}", key_hash_slot("foo{}{bar}")},  // "{}" is no tag: the whole key
      {"foo{{bar}}zap", key_hash_slot("{bar")},     // the tag ends at the first '}'
      {"foo{bar}{zap}", key_hash_slot("bar")},      // only the first tag counts
      {"{search}?q=a", key_hash_slot("search")},
  };
  for (const Case& c : cases) {
    CAPTURE(c.key);
    CHECK(key_hash_slot(c.key) == c.slot);
    CHECK(key_hash_slot(c.key) < kClusterSlots);
  }
  CHECK(key_hash_slot("foo{}{bar}") != key_hash_slot("bar"));
}

TEST_CASE("slot_hash_tag: a short tag of every slot's own, that hashes to it") {
  std::set<std::string_view> tags;
  for (int slot = 0; slot < kClusterSlots; ++slot) {
    const std::string_view tag = slot_hash_tag(slot);
    CAPTURE(slot);
    REQUIRE_FALSE(tag.empty());
    CHECK(tag.size() <= 6);
    CHECK(tag.find_first_not_of("0123456789") == std::string_view::npos);
    CHECK(key_hash_slot("{" + std::string(tag) + "}") == slot);
    CHECK(key_hash_slot("anything{" + std::string(tag) + "}after") == slot);
    tags.insert(tag);
  }
  CHECK(tags.size() == kClusterSlots);
  CHECK(slot_hash_tag(key_hash_slot("0")) == "0");  // the smallest number of its slot
}

TEST_CASE("SlotMap::from_shards: primaries, their replicas and their slot ranges") {
  const std::string text = array({
      shard({integer(0), integer(5460)},
            {shard_node("127.0.0.1", 7000, "master"), shard_node("127.0.0.1", 7003, "replica")}),
      shard({integer(5461), integer(10922)}, {shard_node("127.0.0.1", 7001, "master")}),
      // Two ranges for one shard (after a reshard), and a failed primary still listed.
      shard({integer(10923), integer(16000), integer(16001), integer(16383)},
            {shard_node("127.0.0.1", 7002, "master", "fail"),
             shard_node("127.0.0.1", 7005, "master")}),
      // A primary with no slots serves nothing.
      shard({}, {shard_node("127.0.0.1", 7009, "master")}),
  });
  const RedisReplyPtr reply = reply_of(text);
  std::string error;
  const auto map = SlotMap::from_shards(*reply, kAsked, false, error);
  REQUIRE_MESSAGE(map.has_value(), error);
  CHECK(map->covered_slots() == 16384);
  CHECK(map->shards().size() == 3);
  REQUIRE(map->shard_of(0) != nullptr);
  CHECK(map->shard_of(0)->primary.to_string() == "127.0.0.1:7000");
  REQUIRE(map->shard_of(0)->replicas.size() == 1);
  CHECK(map->shard_of(5460)->replicas[0].to_string() == "127.0.0.1:7003");
  CHECK(map->shard_of(5461)->primary.to_string() == "127.0.0.1:7001");
  CHECK(map->shard_of(16383)->primary.to_string() == "127.0.0.1:7005");
  CHECK(map->shard_of(16000) == map->shard_of(16001));
  CHECK(map->shard_of(-1) == nullptr);
  CHECK(map->shard_of(16384) == nullptr);
  CHECK(map->is_primary(HostPort{"127.0.0.1", 7001}));
  CHECK_FALSE(map->is_primary(HostPort{"127.0.0.1", 7003}));
  CHECK_FALSE(map->is_primary(HostPort{"127.0.0.1", 7009}));
  REQUIRE(map->shard_with_replica(HostPort{"127.0.0.1", 7003}) != nullptr);
  CHECK(map->shard_with_replica(HostPort{"127.0.0.1", 7003})->primary.port == 7000);
  CHECK(map->shard_with_replica(HostPort{"127.0.0.1", 7001}) == nullptr);
}

TEST_CASE("SlotMap::from_shards: the TLS port under TLS, the asked host for an empty one") {
  const std::string text = array(
      {shard({integer(0), integer(16383)}, {shard_node("", 7000, "master", "online", 8000)})});
  const RedisReplyPtr reply = reply_of(text);
  std::string error;
  const auto tls = SlotMap::from_shards(*reply, kAsked, true, error);
  REQUIRE(tls.has_value());
  CHECK(tls->shard_of(42)->primary.to_string() == "127.0.0.1:8000");
  const auto plain = SlotMap::from_shards(*reply, HostPort{"10.0.0.9", 7000}, false, error);
  REQUIRE(plain.has_value());
  CHECK(plain->shard_of(42)->primary.to_string() == "10.0.0.9:7000");
}

TEST_CASE("SlotMap::from_shards and from_slots refuse what is no slot map") {
  std::string error;
  const std::pair<std::string, std::string_view> refused[] = {
      {"-ERR unknown subcommand 'SHARDS'\r\n", "CLUSTER SHARDS answered"},
      {array({array({bulk("slots"), array({integer(0), integer(16384)}), bulk("nodes"),
                     array({shard_node("127.0.0.1", 7000, "master")})})}),
       "out of bounds"},
      {array({array({bulk("slots"), array({integer(9), integer(3)}), bulk("nodes"),
                     array({shard_node("127.0.0.1", 7000, "master")})})}),
       "out of bounds"},
      {array({array({bulk("nodes"), array({})})}), "without slots or nodes"},
  };
  for (const auto& [text, expected] : refused) {
    CAPTURE(text);
    const RedisReplyPtr reply = reply_of(text);
    CHECK_FALSE(SlotMap::from_shards(*reply, kAsked, false, error).has_value());
    CHECK(error.find(expected) != std::string::npos);
  }
  const RedisReplyPtr not_slots = reply_of(array({array({integer(0), integer(5)})}));
  CHECK_FALSE(SlotMap::from_slots(*not_slots, kAsked, error).has_value());
  CHECK(error.find("without a primary") != std::string::npos);
}

TEST_CASE("SlotMap::from_slots: CLUSTER SLOTS of Redis before 7") {
  const std::string text = array({
      array({integer(0), integer(8191), array({bulk("127.0.0.1"), integer(7000), bulk("id0")}),
             array({bulk("127.0.0.1"), integer(7003), bulk("id3")})}),
      array({integer(8192), integer(16383), array({bulk(""), integer(7001), bulk("id1")})}),
  });
  const RedisReplyPtr reply = reply_of(text);
  std::string error;
  const auto map = SlotMap::from_slots(*reply, HostPort{"10.1.1.1", 7000}, error);
  REQUIRE_MESSAGE(map.has_value(), error);
  CHECK(map->covered_slots() == 16384);
  CHECK(map->shard_of(8191)->primary.to_string() == "127.0.0.1:7000");
  CHECK(map->shard_of(8191)->replicas.at(0).to_string() == "127.0.0.1:7003");
  CHECK(map->shard_of(8192)->primary.to_string() == "10.1.1.1:7001");
}

TEST_CASE("SlotMap::move_slot: a MOVED answer moves one slot, to a new primary too") {
  const RedisReplyPtr reply = reply_of(array({
      shard({integer(0), integer(16383)},
            {shard_node("127.0.0.1", 7000, "master"), shard_node("127.0.0.1", 7003, "replica")}),
  }));
  std::string error;
  auto map = SlotMap::from_shards(*reply, kAsked, false, error);
  REQUIRE(map.has_value());
  map->move_slot(42, HostPort{"127.0.0.1", 7003});
  CHECK(map->shard_of(42)->primary.port == 7003);
  CHECK(map->shard_of(41)->primary.port == 7000);
  CHECK(map->is_primary(HostPort{"127.0.0.1", 7003}));
  map->move_slot(99999, HostPort{"127.0.0.1", 7003});  // out of range: ignored
  CHECK(map->covered_slots() == 16384);
}

TEST_CASE("command_slot: the first key of a command or a script; none for keyless commands") {
  RedisCommand script;
  static const RedisScript kScript{"test", "return 1"};
  script.script = &kScript;
  script.num_keys = 2;
  script.args = {"{a}x", "{a}y", "arg"};
  CHECK(command_slot(script) == key_hash_slot("a"));
  script.num_keys = 0;
  CHECK_FALSE(command_slot(script).has_value());

  CHECK(command_slot(RedisCommand{{"MGET", "k1", "k2"}}) == key_hash_slot("k1"));
  CHECK(command_slot(RedisCommand{{"PTTL", "product:42"}}) == key_hash_slot("product:42"));
  for (const char* keyless : {"PING", "ping", "CLUSTER", "SCRIPT", "CLIENT", "ASKING"}) {
    CAPTURE(keyless);
    CHECK_FALSE(command_slot(RedisCommand{{keyless, "x"}}).has_value());
  }
  CHECK_FALSE(command_slot(RedisCommand{{"GET"}}).has_value());
}

TEST_CASE("split_kind: the multi-key commands a cluster sends per slot") {
  CHECK(split_kind(RedisCommand{{"MGET", "a", "b"}}) == SplitReply::Elements);
  CHECK(split_kind(RedisCommand{{"mget", "a", "b"}}) == SplitReply::Elements);
  CHECK(split_kind(RedisCommand{{"DEL", "a", "b"}}) == SplitReply::Sum);
  CHECK(split_kind(RedisCommand{{"UNLINK", "a", "b"}}) == SplitReply::Sum);
  CHECK(split_kind(RedisCommand{{"EXISTS", "a", "b"}}) == SplitReply::Sum);
  CHECK(split_kind(RedisCommand{{"MGET", "a"}}) == SplitReply::None);  // one key: nothing to split
  CHECK(split_kind(RedisCommand{{"SET", "a", "b"}}) == SplitReply::None);
}

TEST_CASE("parse_redirection: MOVED and ASK, and nothing else") {
  const RedisReplyPtr moved = reply_of("-MOVED 3999 127.0.0.1:6381\r\n");
  auto redirection = parse_redirection(moved.get());
  REQUIRE(redirection.has_value());
  CHECK_FALSE(redirection->ask);
  CHECK(redirection->slot == 3999);
  CHECK(redirection->node.to_string() == "127.0.0.1:6381");

  const RedisReplyPtr ask = reply_of("-ASK 16383 [::1]:7002\r\n");
  redirection = parse_redirection(ask.get());
  REQUIRE(redirection.has_value());
  CHECK(redirection->ask);
  CHECK(redirection->slot == 16383);
  CHECK(redirection->node.host == "::1");
  CHECK(redirection->node.port == 7002);

  // A node that does not know its own address says ":port"; the caller fills in the host.
  const RedisReplyPtr hostless = reply_of("-MOVED 1 :7001\r\n");
  redirection = parse_redirection(hostless.get());
  REQUIRE(redirection.has_value());
  CHECK(redirection->node.host.empty());

  for (const char* text : {"-MOVED 16384 127.0.0.1:1\r\n", "-MOVED x 127.0.0.1:1\r\n",
                           "-MOVED 1 127.0.0.1:0\r\n", "-MOVED 1\r\n", "-ERR MOVED 1 a:1\r\n",
                           "+MOVED 1 a:1\r\n", "-TRYAGAIN Multiple keys request\r\n"}) {
    CAPTURE(text);
    const RedisReplyPtr reply = reply_of(text);
    CHECK_FALSE(parse_redirection(reply.get()).has_value());
  }
  CHECK_FALSE(parse_redirection(nullptr).has_value());
}

TEST_CASE("make_array_reply and take_element: replies joined from several nodes") {
  RedisReplyPtr first = reply_of(array({bulk("a"), "$-1\r\n"}));
  RedisReplyPtr second = reply_of(array({integer(7)}));
  std::vector<RedisReplyPtr> elements(3);
  elements[2] = take_element(first.get(), 0);
  elements[0] = take_element(first.get(), 1);
  elements[1] = take_element(second.get(), 0);
  CHECK(take_element(second.get(), 1) == nullptr);
  CHECK(take_element(nullptr, 0) == nullptr);
  const RedisReplyPtr joined = make_array_reply(std::move(elements));
  REQUIRE(joined->type == REDIS_REPLY_ARRAY);
  REQUIRE(joined->elements == 3);
  CHECK(is_nil(joined->element[0]));
  CHECK(reply_integer(joined->element[1]) == 7);
  CHECK(reply_text(joined->element[2]) == "a");
  // What was taken is gone from its source, which still frees cleanly (ASan checks both).
  CHECK(first->element[0] == nullptr);
  CHECK(make_array_reply({})->elements == 0);
  CHECK(reply_integer(make_integer_reply(-3).get()) == -3);
}

}  // namespace
}  // namespace cachecar
