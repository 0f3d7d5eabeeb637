// rate_limit.sync: batched (issue 14) with the real binary and a real Redis: the fleet's
// overshoot stays within replicas x workers x local_budget, a client known over the limit is
// refused without Redis (even a stopped one), and the counts a process admitted reach Redis.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace cachecar::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string batched_yaml(const std::string& settings) {
  return "rate_limit:\n  trusted_proxies: [127.0.0.1]\n  sync: batched\n  sync_interval: 10ms\n" +
         settings;
}

HeaderList from(const std::string& client) { return {{"X-Forwarded-For", client}}; }

// A sample of cachecar's /metrics, e.g. `name{label="x"}`; -1 when absent. The rate-limit
// counters are written as they happen, not by the heartbeat.
long long metric(const Cachecar& cachecar, const std::string& series) {
  const std::string text = http_request(cachecar.admin_port(), "GET", "/metrics").body;
  const size_t at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + series.size() + 2));
}

long long locally_allowed(const Cachecar& cachecar) {
  return metric(cachecar, "cachecar_rate_limit_local_decisions_total{decision=\"allowed\"}");
}

// Every count the process admitted locally has been confirmed by Redis (or dropped, which a
// test window of a minute never does): nothing is owed, so no settlement is still to come.
bool wait_until_settled(const Cachecar& cachecar) {
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    const long long allowed = locally_allowed(cachecar);
    const long long settled = metric(cachecar, "cachecar_rate_limit_counts_settled_total");
    const long long dropped = metric(cachecar, "cachecar_rate_limit_counts_dropped_total");
    if (allowed >= 0 && settled + dropped == allowed) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST_CASE("ratelimit batched: three processes admit at most limit + replicas x workers x budget") {
  constexpr int kLimit = 30;
  constexpr int kReplicas = 3;
  constexpr int kWorkers = 1;  // the harness's default; each process is one worker
  constexpr int kBudget = 3;
  constexpr int kConnectionsEach = 2;
  constexpr int kRequestsEach = 20;  // 40 per process: more than the limit plus the bound
  RedisServer redis;
  TestUpstream upstream;
  const std::string yaml =
      stack_yaml(upstream, redis) +
      batched_yaml("  limit: " + std::to_string(kLimit) +
                   "\n  window: 60s\n  local_budget: " + std::to_string(kBudget) + "\n");
  std::vector<std::unique_ptr<Cachecar>> fleet;
  for (int r = 0; r < kReplicas; ++r) {
    fleet.push_back(std::make_unique<Cachecar>(yaml));
  }
  for (auto& cachecar : fleet) {
    REQUIRE(cachecar->process().wait_for_output(": connected", 5s));
  }

  // One client against every process at once, on two connections to each.
  const std::string client = "198.51.100.7";
  struct Tally {
    int allowed = 0;
    int refused = 0;
    int other = 0;
  };
  std::vector<std::future<Tally>> runs;
  for (int r = 0; r < kReplicas; ++r) {
    for (int c = 0; c < kConnectionsEach; ++c) {
      runs.push_back(std::async(std::launch::async, [&, r] {
        Tally tally;
        HttpConnection connection(fleet[static_cast<size_t>(r)]->port());
        for (int i = 0; i < kRequestsEach; ++i) {
          auto response = connection.request("GET", "/p", from(client));
          if (response.status == 200) {
            ++tally.allowed;
          } else if (response.status == 429 && response.header("RateLimit-Limit") == "30" &&
                     response.header("Retry-After").has_value()) {
            ++tally.refused;
          } else {
            ++tally.other;
          }
        }
        return tally;
      }));
    }
  }
  Tally total;
  for (auto& run : runs) {
    const Tally tally = run.get();
    total.allowed += tally.allowed;
    total.refused += tally.refused;
    total.other += tally.other;
  }
  const int bound = kLimit + kReplicas * kWorkers * kBudget;
  CAPTURE(total.allowed);
  MESSAGE("admitted ", total.allowed, " of ", kReplicas * kConnectionsEach * kRequestsEach,
          " (limit ", kLimit, ", bound ", bound, ")");
  CHECK(total.other == 0);
  // Nobody is refused under the limit (a local refusal counts only what surely happened),
  // nor let through beyond the bound.
  CHECK(total.allowed >= kLimit);
  CHECK(total.allowed <= bound);
  CHECK(total.refused == kReplicas * kConnectionsEach * kRequestsEach - total.allowed);
  CHECK(upstream.request_count() == static_cast<size_t>(total.allowed));
  for (auto& cachecar : fleet) {
    CHECK(locally_allowed(*cachecar) > 0);  // batching happened on every process
    REQUIRE(wait_until_settled(*cachecar));
  }
  // Redis has every admitted request (and those Redis itself refused, which it counts).
  const auto counter = redis.get("rl:global:" + client);
  REQUIRE(counter.has_value());
  CHECK(std::stoi(*counter) >= total.allowed);

  // Each process has refused this client, or admitted more than its share: either way it
  // knows, and refuses without a Redis command until the window ends.
  const long long scripts_before = redis.command_calls("evalsha") + redis.command_calls("eval");
  for (auto& cachecar : fleet) {
    HttpConnection connection(cachecar->port());
    for (int i = 0; i < 3; ++i) {
      auto response = connection.request("GET", "/p", from(client));
      CHECK(response.status == 429);
      CHECK(response.header("RateLimit-Remaining") == "0");
      const int retry_after = std::stoi(response.header("Retry-After").value_or("0"));
      CHECK(retry_after >= 1);
      CHECK(retry_after <= 60);
    }
  }
  CHECK(redis.command_calls("evalsha") + redis.command_calls("eval") == scripts_before);
}

TEST_CASE("ratelimit batched: a client known over the limit gets 429 while Redis is stopped") {
  Stack stack(batched_yaml("  limit: 3\n  window: 60s\n"), "", "  command_timeout: 200ms\n");
  HttpConnection client(stack.port());
  for (int i = 0; i < 3; ++i) {
    CHECK(client.request("GET", "/a", from("203.0.113.1")).status == 200);
  }
  CHECK(client.request("GET", "/a", from("203.0.113.1")).status == 429);
  stack.redis.pause();
  auto refused = [&] {
    auto response = client.request("GET", "/a", from("203.0.113.1"));
    CHECK(response.status == 429);
    CHECK(response.body == R"({"error":"rate limit exceeded"})");
    CHECK(response.header("RateLimit-Limit") == "3");
    CHECK(response.header("RateLimit-Remaining") == "0");
    CHECK(std::stoi(response.header("Retry-After").value_or("0")) >= 1);
  };
  refused();
  // A client this worker does not know goes to Redis, as in exact mode: the hung Redis costs
  // one command_timeout, then the limiter fails open (rate_limit.on_redis_error: allow).
  auto unknown = client.request("GET", "/a", from("203.0.113.2"));
  CHECK(unknown.status == 200);
  CHECK_FALSE(unknown.header("RateLimit-Limit").has_value());
  // Redis is now known down, so no stage asks it: the refusal stands on the local count.
  for (int i = 0; i < 3; ++i) {
    refused();
  }
  stack.redis.resume();
}

TEST_CASE("ratelimit batched: the counts one process admitted reach Redis, coalesced") {
  Stack stack(batched_yaml("  limit: 1000\n  window: 60s\n  local_budget: 1000\n"));
  const long long scripts_before = stack.redis.command_calls("evalsha");
  HttpConnection client(stack.port());
  constexpr int kRequests = 40;
  for (int i = 1; i <= kRequests; ++i) {
    CAPTURE(i);
    auto response = client.request("GET", "/c", from("203.0.113.9"));
    CHECK(response.status == 200);
    // One process alone: its local count is exact.
    CHECK(response.header("RateLimit-Remaining") == std::to_string(1000 - i));
  }
  CHECK(locally_allowed(*stack.cachecar) == kRequests - 1);  // the first seeded the window
  REQUIRE(wait_until_settled(*stack.cachecar));
  CHECK(stack.redis.get("rl:global:203.0.113.9") == std::to_string(kRequests));
  // One script call seeded the window; the settlements coalesced the other 39 into fewer.
  const long long scripts = stack.redis.command_calls("evalsha") - scripts_before;
  CHECK(scripts >= 2);
  CHECK(scripts < kRequests);
  CHECK(metric(*stack.cachecar, "cachecar_rate_limit_settles_total") == scripts - 1);
}

TEST_CASE("ratelimit batched: a sliding window limits and refuses locally") {
  Stack stack(batched_yaml("  limit: 3\n  window: 60s\n  algorithm: sliding_window\n"));
  HttpConnection client(stack.port());
  for (int i = 0; i < 3; ++i) {
    CHECK(client.request("GET", "/s", from("203.0.113.4")).status == 200);
  }
  for (int i = 0; i < 2; ++i) {
    auto over = client.request("GET", "/s", from("203.0.113.4"));
    CHECK(over.status == 429);
    CHECK(over.header("RateLimit-Policy") == "3;w=60");
    CHECK(over.header("Retry-After").has_value());
  }
  CHECK(metric(*stack.cachecar, "cachecar_rate_limit_local_decisions_total{decision=\"denied\"}") ==
        2);
  REQUIRE(wait_until_settled(*stack.cachecar));
  // The window's counter (or, across a window edge, the two) holds the three admitted.
  int counted = 0;
  const std::string keys = stack.redis.command({"KEYS", "rl:{global:203.0.113.4}:*"});
  size_t start = 0;
  while (start < keys.size()) {
    const size_t end = std::min(keys.find('\n', start), keys.size());
    counted += std::stoi(stack.redis.get(keys.substr(start, end - start)).value_or("0"));
    start = end + 1;
  }
  CHECK(counted == 3);
}

}  // namespace
}  // namespace cachecar::test
