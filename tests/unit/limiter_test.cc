// ratelimit/limiter.h: which counter a request increments, the script call that does it, and
// what the script's answer means. The clock and the reply are values, so nothing here needs
// Redis or sleeps.

#include "ratelimit/limiter.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "unit_support.h"

namespace cachecar {
namespace {

IpAddress ip(std::string_view text) {
  auto address = parse_ip(text);
  REQUIRE_MESSAGE(address.has_value(), "not an address: ", std::string(text));
  return *address;
}

LimitPlan make_plan(RateLimitAlgorithm algorithm, int64_t limit, int64_t window_ms,
                    int64_t elapsed_ms = 0) {
  LimitPlan plan;
  plan.limit = limit;
  plan.window = Duration(window_ms);
  plan.algorithm = algorithm;
  plan.key = "rl:global:192.0.2.1";
  if (algorithm == RateLimitAlgorithm::SlidingWindow) {
    plan.key = "rl:{global:192.0.2.1}:7";
    plan.previous_key = "rl:{global:192.0.2.1}:6";
  }
  plan.elapsed_ms = elapsed_ms;
  return plan;
}

constexpr auto kFixed = RateLimitAlgorithm::FixedWindow;
constexpr auto kSliding = RateLimitAlgorithm::SlidingWindow;

// A Unix time in ms: 2023-11-14T22:13:20Z. 1'700'000'000'000 / 60'000 = 28'333'333 rem 20'000.
constexpr int64_t kNow = 1'700'000'000'000;

// Routes, in order:
//   0 /products/{id}  own limit 5, the rest inherited
//   1 /products       no rate_limit key: the global limit
//   2 /health         rate_limit: off
//   3 /search         everything set, scope search-api
//   4 /files/{path*}  own window only
//   5 /orders/{id}    own algorithm only
//   6 /cart           rate_limit: with nothing under it
constexpr std::string_view kRoutes = R"(routes:
  - path: /products/{id}
    key: product:{id}
    rate_limit:
      limit: 5
  - path: /products
    key: products:list
  - path: /health
    key: health
    rate_limit: off
  - path: /search
    key: search
    rate_limit:
      limit: 20
      window: 10s
      algorithm: sliding_window
      scope: search-api
  - path: /files/{path*}
    key: file:{path}
    rate_limit: {window: 1h}
  - path: /orders/{id}
    key: order:{id}
    rate_limit: {algorithm: sliding_window}
  - path: /cart
    key: cart
    rate_limit:
)";

struct Expected {
  int64_t limit;
  int64_t window_ms;
  RateLimitAlgorithm algorithm;
  std::string_view key;
  std::string_view previous_key;
  int64_t elapsed_ms;
};

struct PlanCase {
  std::string_view name;
  std::string yaml;
  int route;  // index into the config's routes, or -1 for none
  std::string_view client;
  int64_t now_ms;
  std::optional<Expected> expected;  // nullopt: no limit applies
};

void check_plan(const PlanCase& c) {
  CAPTURE(c.name);
  CAPTURE(c.client);
  CAPTURE(c.now_ms);
  const Config config = parse_ok(c.yaml);
  const RouteConfig* route = nullptr;
  if (c.route >= 0) {
    REQUIRE(static_cast<size_t>(c.route) < config.routes.size());
    route = &config.routes[static_cast<size_t>(c.route)];
  }
  const std::optional<LimitPlan> plan = plan_rate_limit(config, route, ip(c.client), c.now_ms);
  REQUIRE(plan.has_value() == c.expected.has_value());
  if (!plan) {
    return;
  }
  CHECK(plan->limit == c.expected->limit);
  CHECK(plan->window == Duration(c.expected->window_ms));
  CHECK(plan->algorithm == c.expected->algorithm);
  CHECK(plan->key == c.expected->key);
  CHECK(plan->previous_key == c.expected->previous_key);
  CHECK(plan->elapsed_ms == c.expected->elapsed_ms);
}

TEST_CASE("plan_rate_limit: the global limit and its key") {
  const std::string routes(kRoutes);
  const PlanCase cases[] = {
      {"defaults", "", -1, "192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"a route without its own limit", routes, 1, "192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"global limit and window", "rate_limit:\n  limit: 10\n  window: 1s\n", -1, "192.0.2.1", kNow,
       Expected{10, 1'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"key_prefix", "rate_limit:\n  key_prefix: \"app1:rl:\"\n", -1, "192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "app1:rl:global:192.0.2.1", "", 0}},
      {"empty key_prefix", "rate_limit:\n  key_prefix: \"\"\n", -1, "192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "global:192.0.2.1", "", 0}},
      {"a Redis Cluster hash tag in key_prefix", "rate_limit:\n  key_prefix: \"{rl}:\"\n", -1,
       "192.0.2.1", kNow, Expected{100, 60'000, kFixed, "{rl}:global:192.0.2.1", "", 0}},
      // Redis hashes the first tag: the prefix's, for both windows alike.
      {"a hash tag in key_prefix with a sliding window",
       "rate_limit:\n  key_prefix: \"{rl}:\"\n  algorithm: sliding_window\n", -1, "192.0.2.1",
       kNow,
       Expected{100, 60'000, kSliding, "{rl}:{global:192.0.2.1}:28333333",
                "{rl}:{global:192.0.2.1}:28333332", 20'000}},
      {"IPv4-mapped client", "", -1, "::ffff:192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"IPv6 client grouped by /64", "", -1, "2001:db8:1:2:3:4:5:6", kNow,
       Expected{100, 60'000, kFixed, "rl:global:2001:db8:1:2::/64", "", 0}},
      {"IPv6 client grouped by /48", "rate_limit:\n  ipv6_prefix: 48\n", -1, "2001:db8:1:2:3:4:5:6",
       kNow, Expected{100, 60'000, kFixed, "rl:global:2001:db8:1::/48", "", 0}},
      {"IPv6 client alone with /128", "rate_limit:\n  ipv6_prefix: 128\n", -1,
       "2001:db8:1:2:3:4:5:6", kNow,
       Expected{100, 60'000, kFixed, "rl:global:2001:db8:1:2:3:4:5:6/128", "", 0}},
      {"ipv6_prefix does not touch IPv4 clients", "rate_limit:\n  ipv6_prefix: 48\n", -1,
       "192.0.2.1", kNow, Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"fixed window ignores the clock", "", -1, "192.0.2.1", 0,
       Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
      {"fixed window ignores the clock at a window edge", "", -1, "192.0.2.1", 59'999,
       Expected{100, 60'000, kFixed, "rl:global:192.0.2.1", "", 0}},
  };
  for (const PlanCase& c : cases) {
    check_plan(c);
  }
}

// Sessions configured (a secret from the environment), so counters may be keyed by user.
Config parse_with_sessions(std::string_view yaml) {
  auto result = parse_config(yaml, [](std::string_view name) -> std::optional<std::string> {
    if (name == "SESSION_SECRET") {
      return "a secret";
    }
    return std::nullopt;
  });
  REQUIRE(std::holds_alternative<Config>(result));
  return std::get<Config>(std::move(result));
}

TEST_CASE("plan_rate_limit: counters keyed by the session's user") {
  const IpAddress client = ip("192.0.2.1");
  const std::string alice = "alice";
  const std::string numeric = "192.0.2.1";  // a user named like an address
  const Config or_ip = parse_with_sessions(
      "rate_limit:\n  key: session_user_or_ip\n"
      "routes:\n  - path: /a\n    key: a\n    rate_limit: {key: ip}\n"
      "  - path: /b\n    key: b\n    rate_limit: {limit: 5, algorithm: sliding_window}\n"
      "  - path: /c\n    key: c\n    rate_limit: off\n");
  CHECK(plan_rate_limit(or_ip, nullptr, client, kNow, &alice)->key == "rl:global:user:alice");
  CHECK(plan_rate_limit(or_ip, nullptr, client, kNow, nullptr)->key == "rl:global:192.0.2.1");
  CHECK(plan_rate_limit(or_ip, nullptr, client, kNow, &numeric)->key == "rl:global:user:192.0.2.1");
  CHECK(rate_limit_by_user(or_ip, nullptr));
  // A route's key wins over the global one.
  CHECK(plan_rate_limit(or_ip, &or_ip.routes[0], client, kNow, &alice)->key == "rl:/a:192.0.2.1");
  CHECK_FALSE(rate_limit_by_user(or_ip, &or_ip.routes[0]));
  // A route that keeps the global key: the user's counter in the route's scope, both windows
  // of a sliding one in the user's slot.
  const auto sliding = plan_rate_limit(or_ip, &or_ip.routes[1], client, kNow, &alice);
  REQUIRE(sliding);
  CHECK(sliding->key == "rl:{/b:user:alice}:28333333");
  CHECK(sliding->previous_key == "rl:{/b:user:alice}:28333332");
  CHECK(rate_limit_by_user(or_ip, &or_ip.routes[1]));
  // No limit, no session to read for it.
  CHECK_FALSE(rate_limit_by_user(or_ip, &or_ip.routes[2]));
  CHECK_FALSE(plan_rate_limit(or_ip, &or_ip.routes[2], client, kNow, &alice));

  const Config users_only = parse_with_sessions("rate_limit:\n  key: session_user\n");
  CHECK(plan_rate_limit(users_only, nullptr, client, kNow, &alice)->key == "rl:global:user:alice");
  CHECK_FALSE(plan_rate_limit(users_only, nullptr, client, kNow, nullptr));
  // The allow list is by address, users included.
  const Config allowed =
      parse_with_sessions("rate_limit:\n  key: session_user\n  allow: [192.0.2.0/24]\n");
  CHECK_FALSE(plan_rate_limit(allowed, nullptr, client, kNow, &alice));

  const Config by_ip = parse_with_sessions("");
  CHECK(plan_rate_limit(by_ip, nullptr, client, kNow, &alice)->key == "rl:global:192.0.2.1");
  CHECK_FALSE(rate_limit_by_user(by_ip, nullptr));
}

TEST_CASE("plan_rate_limit: a route's own limit inherits what it leaves unset") {
  const std::string routes(kRoutes);
  const std::string with_global = std::string(kRoutes) +
                                  "rate_limit:\n  limit: 10\n  window: 30s\n"
                                  "  algorithm: sliding_window\n  key_prefix: \"x:\"\n";
  // kNow / 30'000 = 56'666'666 rem 20'000, kNow / 10'000 = 170'000'000 rem 0,
  // kNow / 3'600'000 = 472'222 rem 800'000.
  const PlanCase cases[] = {
      {"own limit, global window and algorithm", routes, 0, "192.0.2.1", kNow,
       Expected{5, 60'000, kFixed, "rl:/products/:id:192.0.2.1", "", 0}},
      {"own limit over a non-default global", with_global, 0, "192.0.2.1", kNow,
       Expected{5, 30'000, kSliding, "x:{/products/:id:192.0.2.1}:56666666",
                "x:{/products/:id:192.0.2.1}:56666665", 20'000}},
      {"everything set, own scope", routes, 3, "192.0.2.1", kNow,
       Expected{20, 10'000, kSliding, "rl:{search-api:192.0.2.1}:170000000",
                "rl:{search-api:192.0.2.1}:169999999", 0}},
      {"everything set, own scope, global prefix", with_global, 3, "192.0.2.1", kNow + 9'999,
       Expected{20, 10'000, kSliding, "x:{search-api:192.0.2.1}:170000000",
                "x:{search-api:192.0.2.1}:169999999", 9'999}},
      {"own window only", routes, 4, "192.0.2.1", kNow,
       Expected{100, 3'600'000, kFixed, "rl:/files/:path:192.0.2.1", "", 0}},
      {"own window only over a sliding global", with_global, 4, "192.0.2.1", kNow,
       Expected{10, 3'600'000, kSliding, "x:{/files/:path:192.0.2.1}:472222",
                "x:{/files/:path:192.0.2.1}:472221", 800'000}},
      {"own algorithm only", routes, 5, "192.0.2.1", kNow,
       Expected{100, 60'000, kSliding, "rl:{/orders/:id:192.0.2.1}:28333333",
                "rl:{/orders/:id:192.0.2.1}:28333332", 20'000}},
      {"rate_limit with nothing under it: own scope, global values", routes, 6, "192.0.2.1", kNow,
       Expected{100, 60'000, kFixed, "rl:/cart:192.0.2.1", "", 0}},
      {"IPv6 client on a route", routes, 0, "2001:db8:1:2::5", kNow,
       Expected{5, 60'000, kFixed, "rl:/products/:id:2001:db8:1:2::/64", "", 0}},
      {"IPv6 client on a sliding route", routes, 3, "2001:db8:1:2::5", kNow + 1,
       Expected{20, 10'000, kSliding, "rl:{search-api:2001:db8:1:2::/64}:170000000",
                "rl:{search-api:2001:db8:1:2::/64}:169999999", 1}},
  };
  for (const PlanCase& c : cases) {
    check_plan(c);
  }
}

TEST_CASE("plan_rate_limit: no limit when it is off or the client is allowed") {
  const std::string routes(kRoutes);
  const std::string global_off = "rate_limit: off\n" + routes;
  const std::string disabled = "rate_limit:\n  enabled: false\n  limit: 3\n" + routes;
  const std::string allow =
      routes + "rate_limit:\n  allow: [127.0.0.1, \"10.1.0.0/16\", \"2001:db8::/32\"]\n";
  const PlanCase cases[] = {
      {"route rate_limit: off", routes, 2, "192.0.2.1", kNow, std::nullopt},
      {"route rate_limit: off, IPv6 client", routes, 2, "2001:db8:1:2::5", kNow, std::nullopt},
      {"global rate_limit: off", global_off, -1, "192.0.2.1", kNow, std::nullopt},
      {"global rate_limit: off, route without a limit", global_off, 1, "192.0.2.1", kNow,
       std::nullopt},
      {"global rate_limit: off wins over a route's own limit", global_off, 0, "192.0.2.1", kNow,
       std::nullopt},
      {"global rate_limit: off wins over a sliding route", global_off, 3, "192.0.2.1", kNow,
       std::nullopt},
      {"enabled: false", disabled, -1, "192.0.2.1", kNow, std::nullopt},
      {"enabled: false wins over a route's own limit", disabled, 0, "192.0.2.1", kNow,
       std::nullopt},
      {"allowed single address", allow, -1, "127.0.0.1", kNow, std::nullopt},
      {"allowed single address, IPv4-mapped", allow, -1, "::ffff:127.0.0.1", kNow, std::nullopt},
      {"allowed range", allow, -1, "10.1.255.255", kNow, std::nullopt},
      {"allowed range on a route with its own limit", allow, 0, "10.1.0.1", kNow, std::nullopt},
      {"allowed range on a sliding route", allow, 3, "10.1.0.1", kNow, std::nullopt},
      {"allowed IPv6 range", allow, -1, "2001:db8:1:2::5", kNow, std::nullopt},
      {"next to an allowed address", allow, -1, "127.0.0.2", kNow,
       Expected{100, 60'000, kFixed, "rl:global:127.0.0.2", "", 0}},
      {"next to an allowed range", allow, -1, "10.2.0.1", kNow,
       Expected{100, 60'000, kFixed, "rl:global:10.2.0.1", "", 0}},
      {"next to an allowed range, on a route", allow, 0, "10.2.0.1", kNow,
       Expected{5, 60'000, kFixed, "rl:/products/:id:10.2.0.1", "", 0}},
      {"next to an allowed IPv6 range", allow, -1, "2001:db9::1", kNow,
       Expected{100, 60'000, kFixed, "rl:global:2001:db9::/64", "", 0}},
      {"the other routes still limit when one is off", routes, 0, "192.0.2.1", kNow,
       Expected{5, 60'000, kFixed, "rl:/products/:id:192.0.2.1", "", 0}},
  };
  for (const PlanCase& c : cases) {
    check_plan(c);
  }
}

TEST_CASE("plan_rate_limit: sliding window keys at window boundaries") {
  const std::string sliding = "rate_limit:\n  algorithm: sliding_window\n";
  const std::string base = "rl:{global:192.0.2.1}:";
  struct Case {
    int64_t now_ms;
    int64_t index;
    int64_t elapsed_ms;
  };
  const Case cases[] = {
      {0, 0, 0},
      {1, 0, 1},
      {59'999, 0, 59'999},
      {60'000, 1, 0},
      {60'001, 1, 1},
      {119'999, 1, 59'999},
      {120'000, 2, 0},
      {kNow - 20'001, 28'333'332, 59'999},
      {kNow - 20'000, 28'333'333, 0},
      {kNow, 28'333'333, 20'000},
      {kNow + 39'999, 28'333'333, 59'999},
      {kNow + 40'000, 28'333'334, 0},
  };
  for (const Case& c : cases) {
    const std::string key = base + std::to_string(c.index);
    const std::string previous = base + std::to_string(c.index - 1);
    check_plan({"sliding window", sliding, -1, "192.0.2.1", c.now_ms,
                Expected{100, 60'000, kSliding, key, previous, c.elapsed_ms}});
  }
}

TEST_CASE("plan_rate_limit: the sliding window key changes exactly at each window start") {
  struct Case {
    std::string yaml;
    int64_t window_ms;
  };
  const Case cases[] = {
      {"rate_limit:\n  algorithm: sliding_window\n  window: 1s\n", 1'000},
      {"rate_limit:\n  algorithm: sliding_window\n  window: 1500ms\n", 1'500},
      {"rate_limit:\n  algorithm: sliding_window\n", 60'000},
      {"rate_limit:\n  algorithm: sliding_window\n  window: 1h\n", 3'600'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.window_ms);
    const Config config = parse_ok(c.yaml);
    for (int64_t k = 1; k <= 3; ++k) {
      const int64_t start = kNow - kNow % c.window_ms + k * c.window_ms;
      for (int64_t now = start - 3; now <= start + 3; ++now) {
        CAPTURE(now);
        const auto before = plan_rate_limit(config, nullptr, ip("192.0.2.1"), now - 1);
        const auto at = plan_rate_limit(config, nullptr, ip("192.0.2.1"), now);
        REQUIRE(before.has_value());
        REQUIRE(at.has_value());
        CHECK((before->key != at->key) == (now == start));
        CHECK(at->elapsed_ms == now - start + (now < start ? c.window_ms : 0));
        CHECK(at->elapsed_ms >= 0);
        CHECK(at->elapsed_ms < c.window_ms);
        if (now == start) {
          // The window that just ended is now the previous one.
          CHECK(at->previous_key == before->key);
        }
      }
    }
  }
}

TEST_CASE("limiter_command: the script, its keys and the window") {
  struct Case {
    std::string_view name;
    LimitPlan plan;
    const RedisScript* script;
    int num_keys;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"fixed window",
       make_plan(kFixed, 100, 60'000),
       &kFixedWindowScript,
       1,
       {"rl:global:192.0.2.1", "60000"}},
      {"fixed window of 1.5s",
       make_plan(kFixed, 3, 1'500),
       &kFixedWindowScript,
       1,
       {"rl:global:192.0.2.1", "1500"}},
      {"sliding window",
       make_plan(kSliding, 100, 60'000, 20'000),
       &kSlidingWindowScript,
       2,
       {"rl:{global:192.0.2.1}:7", "rl:{global:192.0.2.1}:6", "60000"}},
      {"sliding window of an hour",
       make_plan(kSliding, 100, 3'600'000),
       &kSlidingWindowScript,
       2,
       {"rl:{global:192.0.2.1}:7", "rl:{global:192.0.2.1}:6", "3600000"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const RedisCommand command = limiter_command(c.plan);
    CHECK(command.script == c.script);
    CHECK(command.num_keys == c.num_keys);
    CHECK(command.args == c.args);
  }
}

TEST_CASE("limiter_command from a planned request") {
  const Config config =
      parse_ok("rate_limit:\n  algorithm: sliding_window\n  key_prefix: \"app:\"\n  window: 10s\n");
  const auto plan = plan_rate_limit(config, nullptr, ip("2001:db8:1:2::5"), kNow + 2'500);
  REQUIRE(plan.has_value());
  const RedisCommand command = limiter_command(*plan);
  CHECK(command.script == &kSlidingWindowScript);
  CHECK(command.num_keys == 2);
  CHECK(command.args == std::vector<std::string>{"app:{global:2001:db8:1:2::/64}:170000000",
                                                 "app:{global:2001:db8:1:2::/64}:169999999",
                                                 "10000"});
  CHECK(command.script->name == "sliding_window");
  CHECK(kFixedWindowScript.name == "fixed_window");
  CHECK_FALSE(kFixedWindowScript.source.empty());
  CHECK_FALSE(kSlidingWindowScript.source.empty());
}

struct DecisionCase {
  std::string_view reply;  // RESP bytes
  bool allowed;
  int64_t remaining;
  int64_t reset_seconds;
};

TEST_CASE("decide: fixed window, {count, ms left}") {
  const DecisionCase cases[] = {
      {"*2\r\n:1\r\n:60000\r\n", true, 99, 60},
      {"*2\r\n:3\r\n:45000\r\n", true, 97, 45},
      {"*2\r\n:99\r\n:45000\r\n", true, 1, 45},
      {"*2\r\n:100\r\n:45000\r\n", true, 0, 45},  // at the limit: still allowed
      {"*2\r\n:101\r\n:45000\r\n", false, 0, 45},
      {"*2\r\n:5000\r\n:45000\r\n", false, 0, 45},
      // The reset is whole seconds, rounded up, and 0 only when nothing is left.
      {"*2\r\n:5\r\n:1\r\n", true, 95, 1},
      {"*2\r\n:5\r\n:999\r\n", true, 95, 1},
      {"*2\r\n:5\r\n:1000\r\n", true, 95, 1},
      {"*2\r\n:5\r\n:1001\r\n", true, 95, 2},
      {"*2\r\n:5\r\n:59001\r\n", true, 95, 60},
      {"*2\r\n:5\r\n:0\r\n", true, 95, 0},
      {"*2\r\n:5\r\n:-1\r\n", true, 95, 0},  // PTTL: no expiry
      {"*2\r\n:5\r\n:-2\r\n", true, 95, 0},  // PTTL: no key
      {"*2\r\n:250\r\n:1\r\n", false, 0, 1},
  };
  const LimitPlan plan = make_plan(kFixed, 100, 60'000);
  for (const DecisionCase& c : cases) {
    CAPTURE(c.reply);
    const RedisReplyPtr reply = reply_of(c.reply);
    const auto decision = decide(plan, reply.get());
    REQUIRE(decision.has_value());
    CHECK(decision->allowed == c.allowed);
    CHECK(decision->limit == 100);
    CHECK(decision->remaining == c.remaining);
    CHECK(decision->reset_seconds == c.reset_seconds);
  }
}

TEST_CASE("decide: fixed window around a limit of 1") {
  struct Case {
    int64_t count;
    bool allowed;
    int64_t remaining;
  };
  const Case cases[] = {{1, true, 0}, {2, false, 0}, {3, false, 0}};
  const LimitPlan plan = make_plan(kFixed, 1, 1'000);
  for (const Case& c : cases) {
    CAPTURE(c.count);
    const RedisReplyPtr reply = reply_of("*2\r\n:" + std::to_string(c.count) + "\r\n:400\r\n");
    const auto decision = decide(plan, reply.get());
    REQUIRE(decision.has_value());
    CHECK(decision->allowed == c.allowed);
    CHECK(decision->limit == 1);
    CHECK(decision->remaining == c.remaining);
    CHECK(decision->reset_seconds == 1);
  }
}

struct SlidingCase {
  std::string_view name;
  int64_t limit;
  int64_t window_ms;
  int64_t elapsed_ms;
  int64_t current;
  int64_t previous;
  bool allowed;
  int64_t remaining;
  int64_t reset_seconds;
};

void check_sliding(const SlidingCase& c) {
  CAPTURE(c.name);
  const LimitPlan plan = make_plan(kSliding, c.limit, c.window_ms, c.elapsed_ms);
  const RedisReplyPtr reply = reply_of("*2\r\n:" + std::to_string(c.current) +
                                       "\r\n:" + std::to_string(c.previous) + "\r\n");
  const auto decision = decide(plan, reply.get());
  REQUIRE(decision.has_value());
  CHECK(decision->allowed == c.allowed);
  CHECK(decision->limit == c.limit);
  CHECK(decision->remaining == c.remaining);
  CHECK(decision->reset_seconds == c.reset_seconds);
}

TEST_CASE("decide: sliding window, previous*(window-elapsed)/window + current") {
  const SlidingCase cases[] = {
      {"window start, nothing before", 10, 60'000, 0, 1, 0, true, 9, 60},
      {"window start, previous counts fully", 10, 60'000, 0, 1, 9, true, 0, 60},
      {"window start, one over", 10, 60'000, 0, 1, 10, false, 0, 12},
      {"just after the start", 10, 60'000, 1, 1, 0, true, 9, 60},
      {"half way, at the limit", 10, 60'000, 30'000, 5, 10, true, 0, 30},
      {"half way, one over", 10, 60'000, 30'000, 6, 10, false, 0, 12},
      {"half way, fractional estimate rounds remaining down", 10, 60'000, 30'000, 1, 9, true, 4,
       30},
      {"half way, fractional estimate over the limit", 10, 60'000, 30'000, 6, 9, false, 0, 10},
      {"a fifth in, previous weighs 0.8", 10, 60'000, 12'000, 2, 10, true, 0, 48},
      {"three quarters in", 10, 60'000, 45'000, 3, 20, true, 2, 15},
      {"current alone over the limit", 10, 60'000, 45'000, 11, 0, false, 0, 26},
      {"the last millisecond, previous almost gone", 10, 60'000, 59'999, 10, 1'000, false, 0, 7},
      {"the last millisecond, at the limit", 10, 60'000, 59'999, 10, 0, true, 0, 1},
      {"reset rounds up", 10, 60'000, 59'001, 1, 0, true, 9, 1},
      {"reset exact", 10, 60'000, 59'000, 1, 0, true, 9, 1},
      {"reset just over a second", 10, 60'000, 58'999, 1, 0, true, 9, 2},
      {"a 1.5s window", 3, 1'500, 500, 1, 3, true, 0, 1},
      {"a 1.5s window, at its start", 3, 1'500, 0, 1, 0, true, 2, 2},
      {"an hour window", 1'000, 3'600'000, 900'000, 250, 1'000, true, 0, 2'700},
  };
  for (const SlidingCase& c : cases) {
    check_sliding(c);
  }
}

TEST_CASE("decide: a denied sliding-window client is told when a request would pass again") {
  // Each case: the wait Retry-After gives, and the proof that it is right, by asking decide()
  // again at that moment (the next request counted) and one second earlier.
  struct Case {
    std::string_view name;
    int64_t limit, window_ms, elapsed_ms, current, previous;
  };
  const Case cases[] = {
      {"previous decays within this window", 10, 60'000, 0, 1, 10},
      {"half way", 10, 60'000, 30'000, 6, 10},
      {"this window alone is over: wait into the next", 10, 60'000, 45'000, 11, 0},
      {"both over", 10, 60'000, 59'999, 10, 1'000},
      {"far over: most of the next window too", 100, 60'000, 1'000, 1'000, 0},
      {"a 1s window", 5, 1'000, 100, 6, 5},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const auto denied = decide(make_plan(kSliding, c.limit, c.window_ms, c.elapsed_ms),
                               reply_of("*2\r\n:" + std::to_string(c.current) +
                                        "\r\n:" + std::to_string(c.previous) + "\r\n")
                                   .get());
    REQUIRE(denied.has_value());
    REQUIRE_FALSE(denied->allowed);
    CHECK(denied->reset_seconds >= 1);
    // The client comes back after `wait` ms (in this window or the next) as request current+1.
    auto retry_at = [&](int64_t wait_ms) {
      const int64_t at = c.elapsed_ms + wait_ms;
      const bool next_window = at >= c.window_ms;
      const int64_t current = next_window ? 1 : c.current + 1;
      const int64_t previous = next_window ? c.current : c.previous;
      const auto later =
          decide(make_plan(kSliding, c.limit, c.window_ms, next_window ? at - c.window_ms : at),
                 reply_of("*2\r\n:" + std::to_string(current) + "\r\n:" + std::to_string(previous) +
                          "\r\n")
                     .get());
      REQUIRE(later.has_value());
      return later->allowed;
    };
    CHECK(retry_at(denied->reset_seconds * 1000));
    if (denied->reset_seconds > 1) {
      CHECK_FALSE(retry_at((denied->reset_seconds - 1) * 1000 - 1));
    }
  }
}

TEST_CASE("decide: a whole-number sliding estimate is not rounded up by floating point") {
  // The weight (window - elapsed) / window is rational, and often inexact in binary floating
  // point: 33/60 is 0.55000000000000004. 180 * 33/60 + 1 is exactly 100, and must be allowed
  // at a limit of 100.
  const SlidingCase cases[] = {
      {"estimate exactly at the limit, 45% in", 100, 60'000, 27'000, 1, 180, true, 0, 33},
      {"estimate exactly at the limit, 32% in", 60, 60'000, 19'200, 9, 75, true, 0, 41},
      // 100 * 33/60 + 1 = 56 exactly: 44 remain.
      {"whole estimate under the limit: remaining", 100, 60'000, 27'000, 1, 100, true, 44, 33},
      // 300 * 0.81 + 1 = 244 exactly: 56 remain.
      {"whole estimate under the limit, 1s window", 300, 1'000, 190, 1, 300, true, 56, 1},
  };
  for (const SlidingCase& c : cases) {
    check_sliding(c);
  }
}

TEST_CASE("decide: an error or a reply of the wrong shape is no decision") {
  const std::string_view cases[] = {
      "-ERR something went wrong\r\n",
      "-NOSCRIPT No matching script. Please use EVAL.\r\n",
      "-BUSY Redis is busy running a script\r\n",
      "+OK\r\n",
      ":5\r\n",
      "$2\r\n42\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "*0\r\n",
      "*1\r\n:5\r\n",
      "*2\r\n$1\r\n5\r\n:1000\r\n",
      "*2\r\n:5\r\n$4\r\n1000\r\n",
      "*2\r\n:5\r\n$-1\r\n",
      "*2\r\n$-1\r\n:5\r\n",
      "*2\r\n:5\r\n-ERR x\r\n",
      "*2\r\n-ERR x\r\n:5\r\n",
      "*2\r\n+5\r\n:5\r\n",
      "*2\r\n*2\r\n:1\r\n:2\r\n:5\r\n",
      "*2\r\n:5\r\n*0\r\n",
  };
  const LimitPlan plans[] = {make_plan(kFixed, 100, 60'000),
                             make_plan(kSliding, 100, 60'000, 30'000)};
  for (const LimitPlan& plan : plans) {
    for (std::string_view bytes : cases) {
      CAPTURE(bytes);
      CAPTURE(plan.algorithm == kSliding);
      const RedisReplyPtr reply = reply_of(bytes);
      CHECK_FALSE(decide(plan, reply.get()).has_value());
    }
    CHECK_FALSE(decide(plan, nullptr).has_value());
  }
}

TEST_CASE("rate_limit_lines: names, values, and Retry-After only when denied") {
  struct Case {
    std::string_view name;
    LimitPlan plan;
    LimitDecision decision;
    std::string_view expected;
  };
  const Case cases[] = {
      {"allowed",
       make_plan(kFixed, 100, 60'000),
       {true, 100, 99, 60},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 99\r\nRateLimit-Reset: 60\r\n"
       "RateLimit-Policy: 100;w=60\r\n"},
      {"allowed, the last one",
       make_plan(kFixed, 100, 60'000),
       {true, 100, 0, 45},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 45\r\n"
       "RateLimit-Policy: 100;w=60\r\n"},
      {"allowed with no reset left",
       make_plan(kFixed, 100, 60'000),
       {true, 100, 3, 0},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 3\r\nRateLimit-Reset: 0\r\n"
       "RateLimit-Policy: 100;w=60\r\n"},
      {"denied",
       make_plan(kFixed, 100, 60'000),
       {false, 100, 0, 45},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 45\r\n"
       "RateLimit-Policy: 100;w=60\r\nRetry-After: 45\r\n"},
      {"denied, one second left",
       make_plan(kFixed, 100, 60'000),
       {false, 100, 0, 1},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 1\r\n"
       "RateLimit-Policy: 100;w=60\r\nRetry-After: 1\r\n"},
      {"denied with no reset left: Retry-After is at least 1",
       make_plan(kFixed, 100, 60'000),
       {false, 100, 0, 0},
       "RateLimit-Limit: 100\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 0\r\n"
       "RateLimit-Policy: 100;w=60\r\nRetry-After: 1\r\n"},
      {"sliding window policy",
       make_plan(kSliding, 20, 10'000, 2'500),
       {true, 20, 7, 8},
       "RateLimit-Limit: 20\r\nRateLimit-Remaining: 7\r\nRateLimit-Reset: 8\r\n"
       "RateLimit-Policy: 20;w=10\r\n"},
      {"one second window",
       make_plan(kFixed, 1, 1'000),
       {false, 1, 0, 1},
       "RateLimit-Limit: 1\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 1\r\n"
       "RateLimit-Policy: 1;w=1\r\nRetry-After: 1\r\n"},
      {"an hour window",
       make_plan(kFixed, 5'000, 3'600'000),
       {true, 5'000, 4'999, 3'600},
       "RateLimit-Limit: 5000\r\nRateLimit-Remaining: 4999\r\nRateLimit-Reset: 3600\r\n"
       "RateLimit-Policy: 5000;w=3600\r\n"},
      {"a window of 1.5s is w=2",
       make_plan(kFixed, 3, 1'500),
       {true, 3, 2, 2},
       "RateLimit-Limit: 3\r\nRateLimit-Remaining: 2\r\nRateLimit-Reset: 2\r\n"
       "RateLimit-Policy: 3;w=2\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const RateLimitLines written = rate_limit_lines(c.plan, c.decision);
    const std::string_view lines = written.view();
    CHECK(lines == c.expected);
    CHECK((lines.find("Retry-After") != std::string_view::npos) == !c.decision.allowed);
  }
}

TEST_CASE("rate_limit_lines from a Redis reply, end to end") {
  struct Case {
    std::string_view yaml;
    std::string_view reply;
    int64_t now_ms;
    std::string_view expected;
  };
  const Case cases[] = {
      {"rate_limit:\n  limit: 2\n  window: 10s\n", "*2\r\n:1\r\n:9500\r\n", kNow,
       "RateLimit-Limit: 2\r\nRateLimit-Remaining: 1\r\nRateLimit-Reset: 10\r\n"
       "RateLimit-Policy: 2;w=10\r\n"},
      {"rate_limit:\n  limit: 2\n  window: 10s\n", "*2\r\n:3\r\n:2500\r\n", kNow,
       "RateLimit-Limit: 2\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 3\r\n"
       "RateLimit-Policy: 2;w=10\r\nRetry-After: 3\r\n"},
      // Sliding, 10s window, 2.5s in: 4 * 0.75 + 5 = 8 of 10.
      {"rate_limit:\n  limit: 10\n  window: 10s\n  algorithm: sliding_window\n",
       "*2\r\n:5\r\n:4\r\n", kNow + 2'500,
       "RateLimit-Limit: 10\r\nRateLimit-Remaining: 2\r\nRateLimit-Reset: 8\r\n"
       "RateLimit-Policy: 10;w=10\r\n"},
      // 12 * 0.75 + 2 = 11 of 10. The next request passes once 12 * (10 - t) / 10 + 3 <= 10,
      // at t = 4.17s: in 1.67s, so 2.
      {"rate_limit:\n  limit: 10\n  window: 10s\n  algorithm: sliding_window\n",
       "*2\r\n:2\r\n:12\r\n", kNow + 2'500,
       "RateLimit-Limit: 10\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 2\r\n"
       "RateLimit-Policy: 10;w=10\r\nRetry-After: 2\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    CAPTURE(c.reply);
    const Config config = parse_ok(c.yaml);
    const auto plan = plan_rate_limit(config, nullptr, ip("192.0.2.1"), c.now_ms);
    REQUIRE(plan.has_value());
    const RedisReplyPtr reply = reply_of(c.reply);
    const auto decision = decide(*plan, reply.get());
    REQUIRE(decision.has_value());
    CHECK(rate_limit_lines(*plan, *decision).view() == c.expected);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// Found by tests/fuzz (redis_reply): a foreign counter value overflowed the sliding-window
// products. Counts from Redis are untrusted: absurd or negative ones deny or count as zero.
TEST_CASE("decide: absurd or negative counters from Redis never overflow") {
  LimitPlan sliding;
  sliding.limit = 300;
  sliding.window = Duration(58'766);
  sliding.algorithm = RateLimitAlgorithm::SlidingWindow;
  sliding.elapsed_ms = 100;
  LimitPlan fixed = sliding;
  fixed.algorithm = RateLimitAlgorithm::FixedWindow;
  // Fixed window replies {count, ms left}; sliding window {current, previous}.
  struct Case {
    const char* reply;
    bool sliding_allowed;
    bool fixed_allowed;
  };
  const Case cases[] = {
      {"*2\r\n:30\r\n:388888888888888888\r\n", false, true},
      {"*2\r\n:9223372036854775807\r\n:9223372036854775807\r\n", false, false},
      {"*2\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n", true, true},
      {"*2\r\n:-5\r\n:0\r\n", true, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reply);
    const RedisReplyPtr reply = reply_of(c.reply);
    for (const LimitPlan* plan : {&sliding, &fixed}) {
      const auto decision = decide(*plan, reply.get());
      REQUIRE(decision.has_value());
      CHECK(decision->allowed == (plan == &sliding ? c.sliding_allowed : c.fixed_allowed));
      CHECK(decision->remaining >= 0);
      CHECK(decision->remaining <= plan->limit);
      CHECK(decision->reset_seconds >= 0);
    }
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// read_limit: the limiter's verdict from its own replies in the request's batch.
TEST_CASE("read_limit: allowed and denied carry the decision") {
  struct Case {
    std::string_view name;
    LimitPlan plan;
    std::string_view reply;
    LimitVerdict::Kind kind;
    LimitDecision decision;
  };
  const Case cases[] = {
      {"fixed, allowed",
       make_plan(kFixed, 10, 60'000),
       "*2\r\n:3\r\n:30000\r\n",
       LimitVerdict::Kind::Allowed,
       {true, 10, 7, 30}},
      {"fixed, the last one allowed",
       make_plan(kFixed, 10, 60'000),
       "*2\r\n:10\r\n:30000\r\n",
       LimitVerdict::Kind::Allowed,
       {true, 10, 0, 30}},
      {"fixed, denied",
       make_plan(kFixed, 10, 60'000),
       "*2\r\n:11\r\n:30000\r\n",
       LimitVerdict::Kind::Denied,
       {false, 10, 0, 30}},
      {"sliding, allowed",
       make_plan(kSliding, 10, 60'000, 30'000),
       "*2\r\n:1\r\n:4\r\n",
       LimitVerdict::Kind::Allowed,
       {true, 10, 7, 30}},
      {"sliding, denied",
       make_plan(kSliding, 10, 60'000, 30'000),
       "*2\r\n:6\r\n:10\r\n",
       LimitVerdict::Kind::Denied,
       {false, 10, 0, 12}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<RedisReplyPtr> replies;
    replies.push_back(reply_of(c.reply));
    const LimitVerdict verdict = read_limit(c.plan, replies);
    CHECK(verdict.kind == c.kind);
    CHECK(verdict.problem.empty());
    REQUIRE(verdict.decision.has_value());
    CHECK(verdict.decision->allowed == c.decision.allowed);
    CHECK(verdict.decision->limit == c.decision.limit);
    CHECK(verdict.decision->remaining == c.decision.remaining);
    CHECK(verdict.decision->reset_seconds == c.decision.reset_seconds);
    // The same as decide() says of the reply.
    const auto decided = decide(c.plan, replies[0].get());
    REQUIRE(decided.has_value());
    CHECK(decided->reset_seconds == verdict.decision->reset_seconds);
  }
}

TEST_CASE("read_limit: unavailable when Redis did not answer, or answered nonsense") {
  struct Case {
    std::string_view name;
    std::string_view reply;  // "" for no reply: the call failed
    std::string_view problem;
  };
  const Case cases[] = {
      {"no answer", "", ""},
      {"an error", "-BUSY Redis is busy running a script\r\n",
       "BUSY Redis is busy running a script"},
      {"NOSCRIPT", "-NOSCRIPT No matching script. Please use EVAL.\r\n",
       "NOSCRIPT No matching script. Please use EVAL."},
      {"an integer", ":5\r\n", "wrong shape"},
      {"a status", "+OK\r\n", "wrong shape"},
      {"nil", "$-1\r\n", "wrong shape"},
      {"one element", "*1\r\n:5\r\n", "wrong shape"},
      {"an error inside the array", "*2\r\n:5\r\n-ERR x\r\n", "wrong shape"},
  };
  const LimitPlan plans[] = {make_plan(kFixed, 100, 60'000),
                             make_plan(kSliding, 100, 60'000, 30'000)};
  for (const LimitPlan& plan : plans) {
    for (const Case& c : cases) {
      CAPTURE(c.name);
      CAPTURE(plan.algorithm == kSliding);
      std::vector<RedisReplyPtr> replies;
      if (!c.reply.empty()) {
        replies.push_back(reply_of(c.reply));
      }
      const LimitVerdict verdict = read_limit(plan, replies);
      CHECK(verdict.kind == LimitVerdict::Kind::Unavailable);
      CHECK_FALSE(verdict.decision.has_value());
      CHECK(verdict.problem == c.problem);
    }
  }
}

TEST_CASE("read_limit reads only its own slice of a batch") {
  // The limiter's one reply sits between another stage's replies.
  RedisBatch batch;
  const LimitPlan plan = make_plan(kFixed, 10, 60'000);
  const ReplySlice before = batch.add({RedisCommand{{"GET", "a"}}});
  const ReplySlice own = batch.add({limiter_command(plan)});
  const ReplySlice after = batch.add({RedisCommand{{"GET", "b"}}});
  REQUIRE(batch.take().size() == 3);
  CHECK(before.count == 1);
  CHECK(after.count == 1);
  std::vector<RedisReplyPtr> replies;
  replies.push_back(reply_of(":999\r\n"));
  replies.push_back(reply_of("*2\r\n:11\r\n:1000\r\n"));
  replies.push_back(reply_of("-ERR other\r\n"));
  const LimitVerdict verdict = read_limit(plan, replies_for(replies, own));
  CHECK(verdict.kind == LimitVerdict::Kind::Denied);
  REQUIRE(verdict.decision.has_value());
  CHECK(verdict.decision->reset_seconds == 1);
  // The whole call failed: the limiter's slice is empty.
  const std::vector<RedisReplyPtr> failed;
  CHECK(read_limit(plan, replies_for(failed, own)).kind == LimitVerdict::Kind::Unavailable);
}

}  // namespace
}  // namespace cachecar
