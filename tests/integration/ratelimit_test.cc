// Per-client rate limiting shared through Redis: the answers and headers, windows, scopes,
// client identity behind trusted proxies, exactness across two processes, Redis trouble, and
// the one round trip the limiter and the cache lookup share.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <utility>

#include "harness.h"

namespace cachecar::test {
namespace {

std::string limit_yaml(const std::string& settings) {
  return "rate_limit:\n  trusted_proxies: [127.0.0.1]\n" + settings;
}

constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n"
    "  - path: /limited/{id}\n"
    "    key: limited:{id}\n"
    "    ttl: 60s\n"
    "    rate_limit:\n"
    "      limit: 2\n"
    "  - path: /free/{id}\n"
    "    key: free:{id}\n"
    "    ttl: 60s\n"
    "    rate_limit: off\n";

HeaderList from(const std::string& client) { return {{"X-Forwarded-For", client}}; }

TEST_CASE("ratelimit: the sixth request gets 429 while another client still gets 200") {
  Stack stack(limit_yaml("  limit: 5\n  window: 60s\n"), kRoutes);
  HttpConnection client(stack.port());
  for (int i = 1; i <= 5; ++i) {
    CAPTURE(i);
    auto response = client.request("GET", "/x/" + std::to_string(i), from("203.0.113.1"));
    CHECK(response.status == 200);
    CHECK(response.header("RateLimit-Limit") == "5");
    CHECK(response.header("RateLimit-Remaining") == std::to_string(5 - i));
    CHECK(response.header("RateLimit-Policy") == "5;w=60");
    const int reset = std::stoi(response.header("RateLimit-Reset").value_or("-1"));
    CHECK(reset >= 59);
    CHECK(reset <= 60);
  }
  auto limited = client.request("GET", "/x/6", from("203.0.113.1"));
  CHECK(limited.status == 429);
  CHECK(limited.header("RateLimit-Limit") == "5");
  CHECK(limited.header("RateLimit-Remaining") == "0");
  CHECK(limited.header("RateLimit-Policy") == "5;w=60");
  const int limited_reset = std::stoi(limited.header("RateLimit-Reset").value_or("-1"));
  CHECK(limited_reset >= 1);
  CHECK(limited_reset <= 60);
  CHECK(limited.header("Content-Type") == "application/json");
  CHECK(limited.body == R"({"error":"rate limit exceeded"})");
  const int retry_after = std::stoi(limited.header("Retry-After").value_or("0"));
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 60);
  CHECK(retry_after == limited_reset);
  // The limited request did not reach the upstream.
  CHECK(stack.upstream.request_count() == 5);

  auto other = client.request("GET", "/x/7", from("203.0.113.2"));
  CHECK(other.status == 200);
  CHECK(other.header("RateLimit-Remaining") == "4");
  CHECK(stack.redis.get("rl:global:203.0.113.1") == "6");
}

TEST_CASE("ratelimit: the upstream's own quota fields are neither doubled nor cached") {
  Stack stack(limit_yaml("  limit: 5\n  window: 60s\n"), kRoutes);
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.headers = {{"RateLimit-Limit", "1000"},
                     {"RateLimit-Remaining", "999"},
                     {"X-RateLimit-Remaining", "41"}};
    return reply;
  });
  auto miss = http_request(stack.port(), "GET", "/products/1", from("203.0.113.9"));
  CHECK(miss.header("X-Cache") == "MISS");
  CHECK(miss.header_count("RateLimit-Limit") == 1);
  CHECK(miss.header("RateLimit-Limit") == "5");
  CHECK(miss.header("RateLimit-Remaining") == "4");
  for (int i = 0; i < 100 && !stack.redis.get("product:1"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  // Another client's hit: cachecar's quota for that client, nothing of the first one's.
  auto hit = http_request(stack.port(), "GET", "/products/1", from("203.0.113.10"));
  CHECK(hit.header("X-Cache") == "HIT");
  CHECK(hit.header_count("RateLimit-Remaining") == 1);
  CHECK(hit.header("RateLimit-Remaining") == "4");
  CHECK_FALSE(hit.header("X-RateLimit-Remaining").has_value());
}

TEST_CASE("ratelimit: X-Forwarded-For from an untrusted peer does not choose the bucket") {
  Stack stack("rate_limit:\n  limit: 2\n  window: 60s\n");
  CHECK(http_request(stack.port(), "GET", "/a", from("198.51.100.1")).status == 200);
  CHECK(http_request(stack.port(), "GET", "/a", from("198.51.100.2")).status == 200);
  auto third = http_request(stack.port(), "GET", "/a", from("198.51.100.3"));
  CHECK(third.status == 429);
  CHECK(stack.redis.get("rl:global:127.0.0.1") == "3");
}

TEST_CASE("ratelimit: the window resets") {
  Stack stack(limit_yaml("  limit: 2\n  window: 1s\n"));
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/w", from("203.0.113.9")).status == 200);
  CHECK(client.request("GET", "/w", from("203.0.113.9")).status == 200);
  CHECK(client.request("GET", "/w", from("203.0.113.9")).status == 429);
  std::this_thread::sleep_for(1200ms);
  auto fresh = client.request("GET", "/w", from("203.0.113.9"));
  CHECK(fresh.status == 200);
  CHECK(fresh.header("RateLimit-Remaining") == "1");
}

TEST_CASE("ratelimit: a sliding window limits across the window edge") {
  Stack stack(limit_yaml("  limit: 3\n  window: 2s\n  algorithm: sliding_window\n"));
  HttpConnection client(stack.port());
  for (int i = 0; i < 3; ++i) {
    CHECK(client.request("GET", "/s", from("203.0.113.4")).status == 200);
  }
  auto over = client.request("GET", "/s", from("203.0.113.4"));
  CHECK(over.status == 429);
  CHECK(over.header("RateLimit-Policy") == "3;w=2");
  CHECK(over.header("Retry-After").has_value());
}

TEST_CASE("ratelimit: routes override the global limit or turn it off") {
  Stack stack(limit_yaml("  limit: 100\n  window: 60s\n"), kRoutes);
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/limited/1", from("203.0.113.5")).status == 200);
  CHECK(client.request("GET", "/limited/2", from("203.0.113.5")).status == 200);
  auto over = client.request("GET", "/limited/3", from("203.0.113.5"));
  CHECK(over.status == 429);
  CHECK(over.header("RateLimit-Policy") == "2;w=60");
  CHECK(stack.redis.get("rl:/limited/:id:203.0.113.5") == "3");
  // Other routes keep the global limit, counted apart.
  CHECK(client.request("GET", "/products/1", from("203.0.113.5")).header("RateLimit-Limit") ==
        "100");
  for (int i = 0; i < 5; ++i) {
    auto free = client.request("GET", "/free/1", from("203.0.113.5"));
    CHECK(free.status == 200);
    CHECK_FALSE(free.header("RateLimit-Limit").has_value());
  }
}

TEST_CASE("ratelimit: clients in the allow list are never limited") {
  Stack stack(limit_yaml("  limit: 1\n  window: 60s\n  allow: [203.0.113.0/24]\n"));
  for (int i = 0; i < 4; ++i) {
    auto response = http_request(stack.port(), "GET", "/a", from("203.0.113.77"));
    CHECK(response.status == 200);
    CHECK_FALSE(response.header("RateLimit-Limit").has_value());
  }
  CHECK(http_request(stack.port(), "GET", "/a", from("192.0.2.1")).status == 200);
  CHECK(http_request(stack.port(), "GET", "/a", from("192.0.2.1")).status == 429);
}

TEST_CASE("ratelimit: two cachecar processes on one Redis share each client's limit exactly") {
  RedisServer redis;
  TestUpstream upstream;
  const std::string yaml = stack_yaml(upstream, redis) + limit_yaml("  limit: 5\n  window: 60s\n");
  Cachecar first(yaml);
  Cachecar second(yaml);
  REQUIRE(first.process().wait_for_output(": connected", 5s));
  REQUIRE(second.process().wait_for_output(": connected", 5s));

  // Many clients at once, each alternating between the two processes.
  const int kClients = 20;
  const int kRequestsEach = 9;
  std::vector<std::future<int>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      const std::string address = "198.51.100." + std::to_string(c + 1);
      HttpConnection a(first.port());
      HttpConnection b(second.port());
      int allowed = 0;
      for (int i = 0; i < kRequestsEach; ++i) {
        auto response = (i % 2 == 0 ? a : b).request("GET", "/p", from(address));
        allowed += response.status == 200 ? 1 : 0;
      }
      return allowed;
    }));
  }
  for (auto& client : clients) {
    CHECK(client.get() == 5);
  }
  CHECK(upstream.request_count() == static_cast<size_t>(kClients * 5));
}

TEST_CASE("ratelimit: with Redis stopped, allow lets requests through and deny answers 503") {
  RedisServer redis;
  TestUpstream upstream;
  Cachecar open(stack_yaml(upstream, redis) + limit_yaml("  limit: 5\n"));
  Cachecar closed(stack_yaml(upstream, redis) + limit_yaml("  limit: 5\n  on_redis_error: deny\n"));
  REQUIRE(open.process().wait_for_output(": connected", 5s));
  REQUIRE(closed.process().wait_for_output(": connected", 5s));
  CHECK(http_request(open.port(), "GET", "/a").header("RateLimit-Limit") == "5");
  redis.stop();
  for (int i = 0; i < 8; ++i) {
    auto response = http_request(open.port(), "GET", "/a");
    CHECK(response.status == 200);
    CHECK_FALSE(response.header("RateLimit-Limit").has_value());
    auto refused = http_request(closed.port(), "GET", "/a");
    CHECK(refused.status == 503);
    CHECK(refused.body == R"({"error":"rate limiter unavailable"})");
  }
}

TEST_CASE("ratelimit: a hung Redis costs the limiter one command_timeout, then nothing") {
  RedisServer redis;
  TestUpstream upstream;
  const std::string redis_yaml = "  command_timeout: 200ms\n";
  Cachecar open(stack_yaml(upstream, redis, redis_yaml) + limit_yaml("  limit: 1000\n"));
  Cachecar closed(stack_yaml(upstream, redis, redis_yaml) +
                  limit_yaml("  limit: 1000\n  on_redis_error: deny\n"));
  REQUIRE(open.process().wait_for_output(": connected", 5s));
  REQUIRE(closed.process().wait_for_output(": connected", 5s));
  HttpConnection to_open(open.port());
  HttpConnection to_closed(closed.port());
  CHECK(to_open.request("GET", "/a").header("RateLimit-Limit") == "1000");
  CHECK(to_closed.request("GET", "/a").header("RateLimit-Limit") == "1000");
  redis.pause();
  auto timed = [](HttpConnection& client, int expected_status) {
    const auto started = std::chrono::steady_clock::now();
    auto response = client.request("GET", "/a");
    CHECK(response.status == expected_status);
    return std::chrono::steady_clock::now() - started;
  };
  for (auto [client, status] : {std::pair{&to_open, 200}, std::pair{&to_closed, 503}}) {
    CAPTURE(status);
    const auto first = timed(*client, status);
    CHECK(first >= 150ms);  // the timeout that finds Redis hung
    CHECK(first < 200ms + 400ms);
    for (int i = 0; i < 5; ++i) {
      CHECK(timed(*client, status) < 100ms);  // known down: nobody waits for it again
    }
  }
  redis.resume();
}

TEST_CASE("ratelimit: NOSCRIPT after SCRIPT FLUSH is recovered without a failed request") {
  Stack stack(limit_yaml("  limit: 50\n"));
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/a").header("RateLimit-Remaining") == "49");
  CHECK(stack.redis.command({"SCRIPT", "FLUSH"}) == "OK");
  for (int i = 0; i < 3; ++i) {
    auto response = client.request("GET", "/a");
    CHECK(response.status == 200);
    CHECK(response.header("RateLimit-Remaining") == std::to_string(48 - i));
  }
}

TEST_CASE("ratelimit: on the hit path the limiter and the lookup share one round trip") {
  Stack stack(limit_yaml("  limit: 100\n"), kRoutes);
  HttpConnection client(stack.port());
  client.request("GET", "/products/1");
  // Wait for the fill to land so the next request is a hit.
  for (int i = 0; i < 200 && !stack.redis.get("product:1"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  RedisStatsProbe probe(stack.redis.port());
  const long long reads_before = probe.stat("total_reads_processed");
  auto hit = client.request("GET", "/products/1");
  CHECK(hit.header("X-Cache") == "HIT");
  CHECK(hit.header("RateLimit-Remaining") == "98");
  // The probe's second INFO is a read of its own.
  CHECK(probe.stat("total_reads_processed") - reads_before - 1 == 1);
}

}  // namespace
}  // namespace cachecar::test
