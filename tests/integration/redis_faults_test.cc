// Redis is a cache, never a condition of success: killed, hung (SIGSTOP) or restarted under
// traffic, every request is still answered, each costs at most redis.command_timeout extra
// while the failure is detected, nothing extra once Redis is known to be down, and caching
// resumes by itself.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n";

// Sends GETs over one keep-alive connection until told to stop; records what it saw.
struct Traffic {
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::atomic<int> failures{0};
  std::atomic<int> hits{0};
  std::atomic<int> bypasses{0};
  std::atomic<long> slowest_ms{0};

  void run(int port) {
    std::optional<HttpConnection> client;
    for (int i = 0; !stop; ++i) {
      if (!client) {
        client.emplace(port);
      }
      const auto started = std::chrono::steady_clock::now();
      try {
        auto response = client->request("GET", "/products/" + std::to_string(i % 5));
        const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count());
        slowest_ms = std::max(slowest_ms.load(), ms);
        ++requests;
        failures += response.status == 200 ? 0 : 1;
        hits += response.header("X-Cache") == "HIT" ? 1 : 0;
        bypasses += response.header("X-Cache") == "BYPASS" ? 1 : 0;
      } catch (const std::exception&) {
        ++failures;
        client.reset();
      }
      std::this_thread::sleep_for(5ms);
    }
  }
};

TEST_CASE("redis faults: killed, paused and restarted under traffic, no request fails") {
  Stack stack("", kRoutes, "  command_timeout: 100ms\n  connect_timeout: 300ms\n");
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = R"({"target":")" + request.target + "\"}";
    return reply;
  });
  Traffic traffic;
  const int port = stack.port();
  auto runner = std::async(std::launch::async, [&traffic, port] { traffic.run(port); });

  std::this_thread::sleep_for(300ms);
  const int hits_before = traffic.hits;
  CHECK(hits_before > 0);

  stack.redis.kill();
  std::this_thread::sleep_for(400ms);
  const int bypasses_while_down = traffic.bypasses;
  CHECK(bypasses_while_down > 0);

  stack.redis.start();  // empty: every key misses once, then hits again
  std::this_thread::sleep_for(1500ms);
  const int hits_after_restart = traffic.hits;
  CHECK(hits_after_restart > hits_before);

  stack.redis.pause();
  std::this_thread::sleep_for(600ms);
  stack.redis.resume();
  std::this_thread::sleep_for(1500ms);
  CHECK(traffic.hits > hits_after_restart);

  traffic.stop = true;
  runner.get();
  CAPTURE(traffic.requests.load());
  CAPTURE(traffic.slowest_ms.load());
  CHECK(traffic.failures == 0);
  CHECK(traffic.requests > 100);
  // command_timeout plus the upstream's time plus scheduling slack on a shared machine.
  CHECK(traffic.slowest_ms < 100 + 400);
  CHECK(stack.cachecar->output().find("caching resumes") != std::string::npos);
}

TEST_CASE("redis faults: a hung Redis costs one command_timeout, then nothing") {
  Stack stack("", kRoutes, "  command_timeout: 200ms\n");
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/products/1").header("X-Cache") == "MISS");
  stack.redis.pause();

  auto timed = [&client](const std::string& target) {
    const auto started = std::chrono::steady_clock::now();
    auto response = client.request("GET", target);
    CHECK(response.status == 200);
    CHECK(response.header("X-Cache") == "BYPASS");
    return std::chrono::steady_clock::now() - started;
  };
  const auto first = timed("/products/1");
  CHECK(first >= 150ms);  // the failure being detected
  CHECK(first < 200ms + 400ms);
  for (int i = 0; i < 5; ++i) {
    CHECK(timed("/products/2") < 100ms);  // known down: no waiting
  }
  stack.redis.resume();
}

TEST_CASE("redis faults: Redis down at start-up, then up: caching starts by itself") {
  RedisServer redis;
  redis.stop();
  TestUpstream upstream;
  Cachecar cachecar(stack_yaml(upstream, redis) + "routes:\n" + kRoutes);
  auto response = http_request(cachecar.port(), "GET", "/products/1");
  CHECK(response.status == 200);
  CHECK(response.header("X-Cache") == "BYPASS");
  redis.start();
  CHECK(cachecar.process().wait_for_output("connected", 10s));
  CHECK(http_request(cachecar.port(), "GET", "/products/1").header("X-Cache") == "MISS");
  CHECK(http_request(cachecar.port(), "GET", "/products/1").header("X-Cache") == "HIT");
}

TEST_CASE("redis faults: flushed, scripts lost and failed over to a replica under load") {
  Stack stack("rate_limit:\n  limit: 1000000\n", kRoutes);
  Traffic traffic;
  const int port = stack.port();
  auto runner = std::async(std::launch::async, [&traffic, port] { traffic.run(port); });
  std::this_thread::sleep_for(300ms);

  // Everything gone at once: entries, guards, counters and the script cache.
  CHECK(stack.redis.command({"FLUSHALL"}) == "OK");
  CHECK(stack.redis.command({"SCRIPT", "FLUSH"}) == "OK");
  std::this_thread::sleep_for(300ms);
  const int hits_after_flush = traffic.hits;

  // A failover that left this node a replica: reads work, every write is READONLY.
  CHECK(stack.redis.command({"REPLICAOF", "127.0.0.1", "1"}) == "OK");
  std::this_thread::sleep_for(500ms);
  CHECK(stack.redis.command({"REPLICAOF", "NO", "ONE"}) == "OK");
  std::this_thread::sleep_for(500ms);

  traffic.stop = true;
  runner.get();
  CAPTURE(traffic.requests.load());
  CHECK(traffic.failures == 0);
  CHECK(traffic.hits > hits_after_flush);  // caching came back after the failover
  const std::string output = stack.cachecar->output();
  CHECK(output.find("READONLY") != std::string::npos);
}

TEST_CASE("redis faults: error replies (OOM, READONLY) never fail a request") {
  Stack stack("", kRoutes);
  HttpConnection client(stack.port());
  // A read-only replica: lookups work, fills and invalidations are refused.
  CHECK(stack.redis.command({"CONFIG", "SET", "maxmemory", "1"}) == "OK");
  CHECK(stack.redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}) == "OK");
  auto response = client.request("GET", "/products/1");
  CHECK(response.status == 200);
  CHECK(response.header("X-Cache") == "MISS");  // nothing says yet that the fill will fail
  REQUIRE(stack.cachecar->process().wait_for_output("refused by Redis", 2s));
  CHECK(stack.redis.command({"EXISTS", "product:1"}) == "0");
  // Now it is known: the misses that follow are told the truth, that nothing is stored.
  auto refused = client.request("GET", "/products/2");
  CHECK(refused.status == 200);
  CHECK(refused.header("X-Cache") == "BYPASS");
  CHECK(client.request("PUT", "/products/1", {}, "{}").status == 200);
  CHECK(client.request("GET", "/products/1").status == 200);
  CHECK(stack.redis.command({"EXISTS", "product:2"}) == "0");

  // Redis recovers: the next fill is still tried, succeeds, and MISS means stored again.
  CHECK(stack.redis.command({"CONFIG", "SET", "maxmemory", "0"}) == "OK");
  CHECK(client.request("GET", "/products/3").status == 200);
  REQUIRE(stack.cachecar->process().wait_for_output("cache fills succeed again", 2s));
  CHECK(client.request("GET", "/products/4").header("X-Cache") == "MISS");
  for (int i = 0; i < 100 && stack.redis.command({"EXISTS", "product:4"}) != "1"; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(client.request("GET", "/products/4").header("X-Cache") == "HIT");
}

}  // namespace
}  // namespace cachecar::test
