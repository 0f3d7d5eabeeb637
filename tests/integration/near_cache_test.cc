// The near cache (issue 14): hot keys answered from the worker's memory with no Redis command,
// kept coherent by Redis's client tracking. Whether a hit came from the near cache or from
// Redis is read off Redis itself (INFO commandstats: a Redis hit costs an MGET), never off
// cachecar's word. Writes through this replica, through another one and straight into Redis
// each reach the near cache; a lost connection empties it; a Redis that refuses tracking
// leaves it off, said once.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "catalog.h"
#include "harness.h"

namespace cachecar::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kRoutes =
    "routes:\n"
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 300s\n"
    "  - path: /short/{id}\n"
    "    key: short:{id}\n"
    "    ttl: 1s\n";

std::string near_yaml(const std::string& settings = "{max_bytes: 1MiB, max_ttl: 10s}") {
  return "cache:\n  near: " + settings + "\n";
}

HttpResponse get(int port, const std::string& path) { return http_request(port, "GET", path); }

size_t count_occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

template <typename Done>
bool wait_until(Done done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Starts a cachecar with a near cache and waits until Redis tracks for it.
std::unique_ptr<Cachecar> start_near(TestUpstream& upstream, RedisServer& redis,
                                     const std::string& settings = "{max_bytes: 1MiB}") {
  auto cachecar =
      std::make_unique<Cachecar>(stack_yaml(upstream, redis) + near_yaml(settings) + kRoutes);
  const bool tracking = settings.find("tracking: off") != std::string::npos ||
                        cachecar->process().wait_for_output("near cache: Redis tracks", 5s);
  if (!tracking) {
    throw std::runtime_error("tracking never started:\n" + cachecar->output());
  }
  return cachecar;
}

// GET until the answer is a HIT with `value`: the entry is in Redis.
bool warm(int port, const std::string& path, const std::string& value) {
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    HttpResponse response = get(port, path);
    if (response.body == value && response.header("X-Cache") == "HIT") {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// GET until a HIT with `value` that cost Redis no MGET: the near cache holds the entry. (The
// first hit after a fill may be read from Redis twice: Redis announces the fill to this
// worker too, and that message may drop the copy the hit just kept.)
bool warm_near(int port, const std::string& path, const std::string& value, RedisServer& redis) {
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    const long long mgets = redis.command_calls("mget");
    HttpResponse response = get(port, path);
    if (response.body == value && response.header("X-Cache") == "HIT" &&
        redis.command_calls("mget") == mgets) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// GETs until `done` holds for an answer; false after `limit`.
template <typename Done>
bool read_until(int port, const std::string& path, Done done,
                std::chrono::milliseconds limit = 3s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done(get(port, path))) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// A Redis and a catalog whose /products/1 holds "v1", for one test.
struct World {
  RedisServer redis;
  TestUpstream upstream;
  Catalog catalog{upstream};
  World() { catalog.set("/products/1", "v1"); }
};

TEST_CASE("near cache: a hot key is answered with no Redis command after its first hit") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto cachecar = start_near(upstream, redis);
  REQUIRE(warm_near(cachecar->port(), "/products/1", "v1", redis));

  const long long mgets = redis.command_calls("mget");
  HttpConnection client(cachecar->port());
  for (int i = 0; i < 50; ++i) {
    CAPTURE(i);
    HttpResponse response = client.request("GET", "/products/1");
    CHECK(response.status == 200);
    CHECK(response.body == "v1");
    CHECK(response.header("X-Cache") == "HIT");
    CHECK(response.header("Age").has_value());
    HttpResponse head = client.request("HEAD", "/products/1");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == "2");
  }
  CHECK(redis.command_calls("mget") == mgets);
  CHECK(upstream.request_count() == 1);
}

TEST_CASE("near cache: a write through this replica is read fresh at once") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto cachecar = start_near(upstream, redis);
  REQUIRE(warm_near(cachecar->port(), "/products/1", "v1", redis));
  HttpConnection client(cachecar->port());
  for (int round = 2; round <= 6; ++round) {
    const std::string value = "v" + std::to_string(round);
    CAPTURE(value);
    REQUIRE(client.request("PUT", "/products/1", {}, value).status == 200);
    // No wait: the answer was released after this worker dropped its copy.
    HttpResponse after = client.request("GET", "/products/1");
    CHECK(after.body == value);
    CHECK(warm_near(cachecar->port(), "/products/1", value, redis));
  }
}

TEST_CASE("near cache: a write through another replica reaches this one through Redis") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto a = start_near(upstream, redis);
  auto b = start_near(upstream, redis);
  REQUIRE(warm_near(b->port(), "/products/1", "v1", redis));
  std::vector<double> delays_ms;
  for (int round = 2; round <= 6; ++round) {
    const std::string value = "v" + std::to_string(round);
    CAPTURE(value);
    REQUIRE(
        warm_near(b->port(), "/products/1", std::string("v") + std::to_string(round - 1), redis));
    REQUIRE(http_request(a->port(), "PUT", "/products/1", {}, value).status == 200);
    const auto answered = Clock::now();
    CHECK(read_until(b->port(), "/products/1",
                     [&](const HttpResponse& r) { return r.body == value; }));
    delays_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - answered).count());
    // Once fresh, never stale again.
    for (int i = 0; i < 20; ++i) {
      CHECK(get(b->port(), "/products/1").body == value);
    }
  }
  std::sort(delays_ms.begin(), delays_ms.end());
  MESSAGE("PUT answered on A to the first fresh read on B, median ms: ",
          delays_ms[delays_ms.size() / 2]);
}

TEST_CASE("near cache: a key changed in Redis by anyone, FLUSHALL and an epoch bump all reach it") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto cachecar = start_near(upstream, redis);
  const int port = cachecar->port();
  auto is_miss = [](const HttpResponse& r) { return r.header("X-Cache") == "MISS"; };

  SUBCASE("DEL from another client") {
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    REQUIRE(redis.command({"DEL", "product:1"}) == "1");
    CHECK(read_until(port, "/products/1", is_miss));
  }
  SUBCASE("FLUSHALL") {
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    REQUIRE(redis.command({"FLUSHALL"}) == "OK");
    CHECK(read_until(port, "/products/1", is_miss));
  }
  SUBCASE("a bump of the cache epoch") {
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    REQUIRE(redis.command({"INCR", "cachecar:epoch"}) == "1");
    CHECK(read_until(port, "/products/1", is_miss));
    // Stored again under the new epoch, and served from the near cache again.
    CHECK(warm_near(port, "/products/1", "v1", redis));
  }
}

TEST_CASE("near cache: losing either Redis connection empties it until tracking is back") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto cachecar = start_near(upstream, redis);
  const int port = cachecar->port();

  struct Loss {
    const char* name;
    const char* client_type;
    const char* logged;
  };
  for (const Loss& loss :
       {Loss{"the invalidation connection", "pubsub", "the invalidation connection was lost"},
        Loss{"the data connection", "normal", "the data connection was lost"}}) {
    CAPTURE(loss.name);
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    const size_t tracked_before = count_occurrences(cachecar->output(), "near cache: Redis tracks");
    // Killed while Redis keeps the value: only the loss can make the next hit go to Redis.
    REQUIRE(redis.command({"CLIENT", "KILL", "TYPE", loss.client_type}) != "0");
    REQUIRE(cachecar->process().wait_for_output(loss.logged, 5s));
    REQUIRE(wait_until([&] {
      return count_occurrences(cachecar->output(), "near cache: Redis tracks") > tracked_before;
    }));
    const long long mgets = redis.command_calls("mget");
    HttpResponse after = get(port, "/products/1");
    CHECK(after.body == "v1");
    CHECK(after.header("X-Cache") == "HIT");
    CHECK(redis.command_calls("mget") > mgets);  // read from Redis: the near cache was emptied
    // And coherent again: a change in Redis still reaches it.
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    REQUIRE(redis.command({"DEL", "product:1"}) == "1");
    CHECK(read_until(port, "/products/1",
                     [](const HttpResponse& r) { return r.header("X-Cache") == "MISS"; }));
  }
}

// Issue 13's journal keeps its meaning: a write whose invalidation Redis refuses (the scripts
// denied on a live connection, so no connection loss empties the near cache) is never followed
// by the near cache's old copy, neither while the key is journaled nor after its replay.
TEST_CASE("near cache: a journaled write is never followed by the near cache's old copy") {
  World world;
  auto& [redis, upstream, catalog] = world;
  auto cachecar = start_near(upstream, redis);
  const int port = cachecar->port();
  REQUIRE(warm_near(port, "/products/1", "v1", redis));

  REQUIRE(redis.command({"ACL", "SETUSER", "default", "-@scripting"}) == "OK");
  REQUIRE(http_request(port, "PUT", "/products/1", {}, "v2").status == 200);
  REQUIRE(cachecar->process().wait_for_output("journaled product:1", 5s));
  for (int i = 0; i < 10; ++i) {
    HttpResponse during = get(port, "/products/1");
    CHECK(during.body == "v2");
    CHECK(during.header("X-Cache") == "BYPASS");
  }
  REQUIRE(redis.command({"ACL", "SETUSER", "default", "+@scripting"}) == "OK");
  // The replay retries with backoff (at most 2 s); until it lands, reads bypass.
  CHECK(read_until(
      port, "/products/1", [](const HttpResponse& r) { return r.header("X-Cache") != "BYPASS"; },
      5s));
  for (int i = 0; i < 10; ++i) {
    CHECK(get(port, "/products/1").body == "v2");
  }
  CHECK(warm_near(port, "/products/1", "v2", redis));
}

TEST_CASE("near cache: a reload that adds a route has Redis announce its keys too") {
  World world;
  auto& [redis, upstream, catalog] = world;
  catalog.set("/items/1", "i1");
  auto cachecar = start_near(upstream, redis);
  const std::string items = "  - path: /items/{id}\n    key: item:{id}\n    ttl: 300s\n";
  cachecar->rewrite_config(stack_yaml(upstream, redis) + near_yaml("{max_bytes: 1MiB}") + kRoutes +
                           items);
  cachecar->process().signal(SIGHUP);
  REQUIRE(cachecar->process().wait_for_output("configuration reloaded", 5s));
  REQUIRE(wait_until(
      [&] { return count_occurrences(cachecar->output(), "near cache: Redis tracks") == 2; }));
  REQUIRE(warm_near(cachecar->port(), "/items/1", "i1", redis));
  REQUIRE(redis.command({"DEL", "item:1"}) == "1");
  CHECK(read_until(cachecar->port(), "/items/1",
                   [](const HttpResponse& r) { return r.header("X-Cache") == "MISS"; }));
  // The routes it had before are still tracked.
  REQUIRE(warm_near(cachecar->port(), "/products/1", "v1", redis));
  REQUIRE(redis.command({"DEL", "product:1"}) == "1");
  CHECK(read_until(cachecar->port(), "/products/1",
                   [](const HttpResponse& r) { return r.header("X-Cache") == "MISS"; }));
}

TEST_CASE("near cache: a Redis that refuses CLIENT TRACKING leaves it off, logged once") {
  World world;
  auto& [redis, upstream, catalog] = world;
  // As some managed services do: the command exists but this user may not run it.
  REQUIRE(redis.command({"ACL", "SETUSER", "default", "-client|tracking"}) == "OK");
  Cachecar cachecar(stack_yaml(upstream, redis) + near_yaml() + kRoutes);
  REQUIRE(cachecar.process().wait_for_output("refused CLIENT TRACKING", 5s));
  REQUIRE(warm(cachecar.port(), "/products/1", "v1"));
  const long long mgets = redis.command_calls("mget");
  CHECK(get(cachecar.port(), "/products/1").header("X-Cache") == "HIT");
  CHECK(redis.command_calls("mget") == mgets + 1);  // every hit from Redis
  // A reconnect does not try again, nor say it again.
  REQUIRE(redis.command({"CLIENT", "KILL", "TYPE", "normal"}) != "0");
  REQUIRE(cachecar.process().wait_for_output("connected again", 5s));
  REQUIRE(warm(cachecar.port(), "/products/1", "v1"));
  CHECK(count_occurrences(cachecar.output(), "refused CLIENT TRACKING") == 1);
  CHECK(count_occurrences(cachecar.output(), "near cache: Redis tracks") == 0);
}

TEST_CASE("near cache: an entry never outlives its Redis TTL nor max_ttl") {
  World world;
  auto& [redis, upstream, catalog] = world;
  catalog.set("/short/1", "s1");
  // Without tracking, only the two bounds end an entry: a change in Redis goes unseen.
  auto cachecar = start_near(upstream, redis, "{max_bytes: 1MiB, max_ttl: 1500ms, tracking: off}");
  const int port = cachecar->port();

  SUBCASE("the Redis TTL (1s) ends it before max_ttl") {
    REQUIRE(warm_near(port, "/short/1", "s1", redis));
    const auto stored = Clock::now();
    CHECK(read_until(
        port, "/short/1", [](const HttpResponse& r) { return r.header("X-Cache") == "MISS"; }, 3s));
    CHECK(Clock::now() - stored < 1400ms);
  }
  SUBCASE("max_ttl ends it while Redis still has it") {
    REQUIRE(warm_near(port, "/products/1", "v1", redis));
    const auto stored = Clock::now();
    catalog.set("/products/1", "v2");
    REQUIRE(redis.command({"DEL", "product:1"}) == "1");
    // Unseen without tracking: still the near cache's copy.
    CHECK(get(port, "/products/1").body == "v1");
    CHECK(read_until(port, "/products/1", [](const HttpResponse& r) { return r.body == "v2"; }));
    CHECK(Clock::now() - stored < 3s);
  }
}

}  // namespace
}  // namespace cachecar::test
