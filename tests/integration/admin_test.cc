// Operations: the admin endpoints (health, readiness through a drain, Prometheus metrics that
// promtool accepts and a real Prometheus scrapes) and SIGHUP reloads under load.

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <regex>
#include <thread>
#include <vector>

#include "harness.h"
#include "support/free_port.h"

namespace cachecar::test {
namespace {

constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n";

// The value of one sample line of the exposition ("name{labels} value"), or -1.
double sample_value(const std::string& metrics, const std::string& series) {
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) {
    return -1;
  }
  return std::stod(metrics.substr(at + series.size() + 2));
}

TEST_CASE("admin: healthz and readyz answer, other paths and methods do not") {
  Stack stack;
  const int admin = stack.cachecar->admin_port();
  auto health = http_request(admin, "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  CHECK(http_request(admin, "GET", "/readyz").status == 200);
  CHECK(http_request(admin, "GET", "/nope").status == 404);
  CHECK(http_request(admin, "POST", "/healthz", {}, "x").status == 405);
  // Keep-alive works for scrapers that reuse their connection.
  HttpConnection scraper(admin);
  for (int i = 0; i < 3; ++i) {
    CHECK(scraper.request("GET", "/metrics").status == 200);
  }
}

TEST_CASE("admin: a connection in use stays open, one idle for idle_timeout is closed") {
  Stack stack("limits:\n  idle_timeout: 1s\n");
  HttpConnection scraper(stack.cachecar->admin_port());
  // Scrapes 400 ms apart for 2.4 s: well past one idle timeout after the accept, never idle
  // for one.
  for (int i = 0; i < 6; ++i) {
    CHECK(scraper.request("GET", "/metrics").status == 200);
    CHECK_FALSE(scraper.closed_by_peer(400ms));
  }
  CHECK(scraper.request("GET", "/healthz").status == 200);
  // Now idle: limits.idle_timeout applies to admin connections too.
  CHECK(scraper.closed_by_peer(3s));
}

TEST_CASE("admin: the admin port is never rate limited") {
  TestUpstream upstream;
  RedisServer redis;
  Cachecar cachecar(stack_yaml(upstream, redis) + "rate_limit:\n  limit: 1\n");
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  CHECK(http_request(cachecar.port(), "GET", "/a").status == 200);
  CHECK(http_request(cachecar.port(), "GET", "/a").status == 429);
  for (int i = 0; i < 5; ++i) {
    auto metrics = http_request(cachecar.admin_port(), "GET", "/metrics");
    CHECK(metrics.status == 200);
    CHECK_FALSE(metrics.header("RateLimit-Limit").has_value());
  }
}

TEST_CASE("admin: readyz turns 503 within a second of SIGTERM while requests finish") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.delay = 1500ms;
    reply.body = "done";
    return reply;
  });
  const int port = stack.port();
  const int admin = stack.cachecar->admin_port();
  auto in_flight =
      std::async(std::launch::async, [port] { return http_request(port, "GET", "/slow"); });
  REQUIRE(stack.upstream.wait_for_requests(1, 2s));
  const auto signalled = std::chrono::steady_clock::now();
  stack.cachecar->process().signal(SIGTERM);
  bool unready = false;
  while (std::chrono::steady_clock::now() - signalled < 1s) {
    if (http_request(admin, "GET", "/readyz").status == 503) {
      unready = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK(unready);
  // Still alive while it drains.
  CHECK(http_request(admin, "GET", "/healthz").status == 200);
  auto response = in_flight.get();
  CHECK(response.status == 200);
  CHECK(response.body == "done");
  CHECK(stack.cachecar->process().wait_exit(5s) == 0);
}

TEST_CASE("admin: metrics pass promtool and count hits, misses, limits and errors") {
  RedisServer redis;
  TestUpstream upstream;
  Cachecar cachecar(stack_yaml(upstream, redis) + "rate_limit:\n  limit: 8\nroutes:\n" + kRoutes);
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  HttpConnection client(cachecar.port());
  client.request("GET", "/products/1");  // MISS
  for (int i = 0; i < 200 && !redis.get("product:1"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  for (int i = 0; i < 3; ++i) {
    CHECK(client.request("GET", "/products/1").header("X-Cache") == "HIT");
  }
  client.request("POST", "/other", {}, "x");  // BYPASS
  upstream.stop();
  client.request("GET", "/down");  // refused: 502
  for (int i = 0; i < 4; ++i) {
    client.request("GET", "/products/1");  // 2 more hits, then 429s
  }
  std::this_thread::sleep_for(1100ms);  // gauges are copied every second

  const std::string metrics = http_request(cachecar.admin_port(), "GET", "/metrics").body;
  CAPTURE(metrics);
  CHECK(sample_value(metrics,
                     R"(cachecar_requests_total{method="GET",status_class="2xx",cache="MISS"})") ==
        1);
  CHECK(sample_value(metrics,
                     R"(cachecar_requests_total{method="GET",status_class="2xx",cache="HIT"})") ==
        5);
  CHECK(sample_value(
            metrics,
            R"(cachecar_requests_total{method="POST",status_class="2xx",cache="BYPASS"})") == 1);
  CHECK(sample_value(
            metrics,
            R"(cachecar_requests_total{method="GET",status_class="5xx",cache="BYPASS"})") == 1);
  CHECK(sample_value(
            metrics,
            R"(cachecar_requests_total{method="GET",status_class="4xx",cache="BYPASS"})") == 2);
  CHECK(sample_value(metrics, "cachecar_rate_limited_total") == 2);
  CHECK(sample_value(metrics, R"(cachecar_upstream_errors_total{kind="refused"})") == 1);
  CHECK(sample_value(metrics, "cachecar_request_duration_seconds_count") == 10);
  CHECK(sample_value(metrics, R"(cachecar_redis_connected{worker="0"})") == 1);
  CHECK(sample_value(metrics, "cachecar_client_connections") == 1);
  CHECK(sample_value(metrics, "cachecar_cache_fills_total") == 1);
  CHECK(sample_value(metrics, R"(cachecar_build_info{version="0.1.0"})") == 1);
  CHECK(sample_value(metrics, "cachecar_redis_commands_total") >
        sample_value(metrics, "cachecar_redis_writes_total"));

  TempDir dir;
  const std::string file = dir.write_file("metrics.txt", metrics);
  ChildProcess promtool("sh", {"-c", "promtool check metrics < '" + file + "'"});
  CHECK(promtool.wait_exit(10s) == 0);
  CAPTURE(promtool.output());
}

TEST_CASE("admin: metrics count coalescing, each upstream failure and each Redis failure") {
  RedisServer redis;
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    if (request.target == "/products/7") {
      reply.delay = 200ms;  // long enough for the other misses to join its flight
    } else if (request.target == "/hang") {
      reply.delay = 2s;
    } else if (request.target == "/garbage") {
      reply.fault = UpstreamReply::Fault::Garbage;
    } else if (request.target == "/reset") {
      reply.fault = UpstreamReply::Fault::ResetBeforeResponse;
    }
    return reply;
  });
  Cachecar cachecar("upstream:\n  url: " + upstream.url() + "\n  timeout: 600ms\n" +
                    "redis:\n  url: " + redis.url() + "\n  command_timeout: 200ms\n" + "routes:\n" +
                    kRoutes);
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  const int port = cachecar.port();
  auto metric = [&cachecar](const std::string& series) {
    return sample_value(http_request(cachecar.admin_port(), "GET", "/metrics").body, series);
  };

  std::vector<std::future<HttpResponse>> misses;
  for (int i = 0; i < 5; ++i) {
    misses.push_back(std::async(std::launch::async,
                                [port] { return http_request(port, "GET", "/products/7"); }));
  }
  for (auto& miss : misses) {
    CHECK(miss.get().status == 200);
  }
  CHECK(upstream.request_count() == 1);
  // A request is counted when its exchange ends, which may be a moment after its client has
  // read the answer (the write's completion comes back to the loop first).
  CHECK(eventually([&] {
    return metric(R"(cachecar_requests_total{method="GET",status_class="2xx",cache="MISS"})") == 1;
  }));
  CHECK(eventually([&] {
    return metric(
               R"(cachecar_requests_total{method="GET",status_class="2xx",cache="COALESCED"})") ==
           4;
  }));
  CHECK(eventually([&] { return metric("cachecar_upstream_duration_seconds_count") == 1; }));

  CHECK(http_request(port, "GET", "/hang").status == 504);
  CHECK(http_request(port, "GET", "/garbage").status == 502);
  CHECK(http_request(port, "GET", "/reset").status == 502);
  CHECK(metric(R"(cachecar_upstream_errors_total{kind="timeout"})") == 1);
  CHECK(metric(R"(cachecar_upstream_errors_total{kind="invalid"})") == 1);
  CHECK(metric(R"(cachecar_upstream_errors_total{kind="reset"})") == 1);

  // Redis refuses a fill (an error reply), then hangs (a timeout and a disconnect).
  CHECK(redis.command({"CONFIG", "SET", "maxmemory", "1"}) == "OK");
  CHECK(redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}) == "OK");
  CHECK(http_request(port, "GET", "/products/8").status == 200);
  REQUIRE(cachecar.process().wait_for_output("refused by Redis", 2s));
  CHECK(redis.command({"CONFIG", "SET", "maxmemory", "0"}) == "OK");
  redis.pause();
  CHECK(http_request(port, "GET", "/products/9").status == 200);
  std::this_thread::sleep_for(1100ms);  // gauges and Redis counters are copied every second
  const std::string metrics = http_request(cachecar.admin_port(), "GET", "/metrics").body;
  CAPTURE(metrics);
  CHECK(sample_value(metrics, "cachecar_cache_fill_errors_total") == 1);
  CHECK(sample_value(metrics, "cachecar_redis_errors_total") >= 1);
  CHECK(sample_value(metrics, "cachecar_redis_timeouts_total") == 1);
  CHECK(sample_value(metrics, "cachecar_redis_disconnects_total") >= 1);
  CHECK(sample_value(metrics, R"(cachecar_redis_connected{worker="0"})") == 0);
  CHECK(sample_value(metrics, R"(cachecar_upstream_connections{state="idle"})") >= 1);
  CHECK(sample_value(metrics, R"(cachecar_upstream_connections{state="busy"})") == 0);
  redis.resume();
}

TEST_CASE("admin: a real Prometheus scrapes cachecar") {
  Stack stack("", kRoutes);
  HttpConnection client(stack.port());
  client.request("GET", "/products/7");
  for (int i = 0; i < 200 && !stack.redis.get("product:7"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  client.request("GET", "/products/7");
  client.request("GET", "/products/7");

  TempDir dir;
  const int prometheus_port = free_tcp_port();
  const std::string config =
      dir.write_file("prometheus.yml",
                     "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                     "  - job_name: cachecar\n    static_configs:\n      - targets: ['127.0.0.1:" +
                         std::to_string(stack.cachecar->admin_port()) + "']\n");
  ChildProcess prometheus("prometheus",
                          {"--config.file=" + config, "--storage.tsdb.path=" + dir.path() + "/data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)});
  const std::string query =
      "/api/v1/query?query=sum(cachecar_requests_total%7Bcache%3D%22HIT%22%7D)";
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(500ms);
    auto connection = HttpConnection::try_connect(prometheus_port, 500ms);
    if (!connection) {
      continue;
    }
    answer = connection->request("GET", query).body;
    if (answer.find(R"("value":[)") != std::string::npos) {
      break;
    }
  }
  CAPTURE(answer);
  CAPTURE(prometheus.output());
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[t,"2"]}]}}
  CHECK(std::regex_search(answer, std::regex(R"("value":\[[0-9.]+,"2"\])")));
}

TEST_CASE("reload: SIGHUP changes a route's TTL without dropping a keep-alive connection") {
  RedisServer redis;
  TestUpstream upstream;
  const std::string base = stack_yaml(upstream, redis) + "routes:\n";
  Cachecar cachecar(base + kRoutes);
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  HttpConnection client(cachecar.port());
  client.request("GET", "/products/1");
  for (int i = 0; i < 200 && !redis.get("product:1"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(redis.ttl("product:1") > 30);

  cachecar.rewrite_config(base + "  - path: /products/{id}\n    key: product:{id}\n    ttl: 5s\n");
  cachecar.process().signal(SIGHUP);
  REQUIRE(cachecar.process().wait_for_output("configuration reloaded", 5s));
  std::this_thread::sleep_for(100ms);    // the workers pick it up on their next loop turn
  client.request("GET", "/products/2");  // the same connection
  for (int i = 0; i < 200 && !redis.get("product:2"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const long long ttl = redis.ttl("product:2");
  CHECK(ttl >= 1);
  CHECK(ttl <= 5);
  CHECK(client.request("GET", "/products/1").header("X-Cache") == "HIT");
}

TEST_CASE("reload: a bad file is rejected, a good one applied, under load with no failure") {
  RedisServer redis;
  TestUpstream upstream;
  const std::string base = stack_yaml(upstream, redis);
  Cachecar cachecar(base + "log:\n  level: info\n");
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  const int port = cachecar.port();
  auto traffic = std::async(std::launch::async, [&] {
    HttpConnection client(port);
    while (!stop) {
      try {
        failed += client.request("GET", "/load").status == 200 ? 0 : 1;
      } catch (const std::exception&) {
        ++failed;
        client = HttpConnection(port);
      }
      ++sent;
    }
  });

  cachecar.rewrite_config(base + "log:\n  level: loud\n");
  cachecar.process().signal(SIGHUP);
  CHECK(cachecar.process().wait_for_output("reload rejected", 5s));
  // The message --check-config gives: file, line, key, reason.
  CHECK(std::regex_search(cachecar.output(),
                          std::regex(R"(config\.yaml:\d+: log\.level: expected one of)")));

  // At level info a malformed request is answered but not described.
  auto send_garbage = [port] {
    HttpConnection client(port);
    client.try_send_raw("GARBAGE\r\n\r\n");
    auto response = client.read_response();
    return response ? response->status : 0;
  };
  CHECK(send_garbage() == 400);

  // The good file changes what a reload applies (log level, rate limit, a route and its TTL)
  // and what it cannot (listen, workers), written whole because it moves listen.
  {
    std::ofstream file(cachecar.config_path());
    file << "listen: 127.0.0.1:1\nadmin:\n  listen: 127.0.0.1:0\n"
         << base << "workers: 2\nlog:\n  level: debug\nrate_limit:\n  limit: 1000000\n"
         << "routes:\n  - path: /products/{id}\n    key: product:{id}\n    ttl: 7s\n";
  }
  cachecar.process().signal(SIGHUP);
  CHECK(cachecar.process().wait_for_output("configuration reloaded", 5s));
  // Sockets are bound and threads run: reported, not applied.
  const std::string output = cachecar.output();
  CHECK(output.find("workers changed from 1 to 2; it takes effect after a restart") !=
        std::string::npos);
  CHECK(output.find("listen changed from 127.0.0.1:0 to 127.0.0.1:1; it takes effect after a "
                    "restart") != std::string::npos);
  std::this_thread::sleep_for(300ms);
  stop = true;
  traffic.get();
  CHECK(sent > 50);
  CHECK(failed == 0);
  CHECK(cachecar.output().find("bad request (400)") == std::string::npos);

  // Still serving on its original port, now with the new rate limit, route and log level.
  auto after = http_request(port, "GET", "/products/3");
  CHECK(after.status == 200);
  CHECK(after.header("RateLimit-Limit") == "1000000");
  CHECK(after.header("X-Cache") == "MISS");
  for (int i = 0; i < 200 && !redis.get("product:3"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const long long ttl = redis.ttl("product:3");
  CHECK(ttl >= 1);
  CHECK(ttl <= 7);
  CHECK(send_garbage() == 400);
  CHECK(cachecar.process().wait_for_output("bad request (400)", 2s));
}

TEST_CASE("reload: a changed upstream.url is reported and the running one kept whole") {
  RedisServer redis;
  TestUpstream running;
  TestUpstream next;
  auto yaml = [&redis](const TestUpstream& upstream, const std::string& prefix) {
    return "upstream:\n  url: " + upstream.url() + prefix + "\nredis:\n  url: " + redis.url() +
           "\n";
  };
  Cachecar cachecar(yaml(running, "/v1"));
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  HttpConnection client(cachecar.port());
  CHECK(client.request("GET", "/a").status == 200);

  // Host, port and path prefix all change: none of them may apply without the others.
  cachecar.rewrite_config(yaml(next, "/v2"));
  cachecar.process().signal(SIGHUP);
  REQUIRE(cachecar.process().wait_for_output("configuration reloaded", 5s));
  const std::string report = "upstream.url changed from " + running.url() + "/v1 to " + next.url() +
                             "/v2; it takes effect after a restart";
  CHECK(cachecar.output().find(report) != std::string::npos);
  std::this_thread::sleep_for(100ms);  // the workers pick it up on their next loop turn
  CHECK(client.request("GET", "/b").status == 200);                 // the same client connection
  CHECK(http_request(cachecar.port(), "GET", "/c").status == 200);  // and a new one
  std::string targets;
  for (const ReceivedRequest& request : running.requests()) {
    targets += request.target + " ";
  }
  CHECK(targets == "/v1/a /v1/b /v1/c ");
  CHECK(next.request_count() == 0);

  // Still not in force, so a further reload says so again.
  cachecar.process().signal(SIGHUP);
  bool reported_again = false;
  for (int i = 0; i < 250 && !reported_again; ++i) {
    const std::string output = cachecar.output();
    reported_again = output.find(report, output.find(report) + 1) != std::string::npos;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(reported_again);
}

TEST_CASE("reload: a new redis.connect_timeout bounds the next connection attempt") {
  RedisServer redis;
  TestUpstream upstream;
  // Paused, Redis accepts connections but never answers, so every handshake runs into the
  // timeout and reconnects, and each failure names the budget it had.
  redis.pause();
  const std::string base = "upstream:\n  url: " + upstream.url() +
                           "\nredis:\n  url: " + redis.url() + "\n  connect_timeout: ";
  const std::string log = "\nlog:\n  level: debug\n";
  Cachecar cachecar(base + "300ms" + log);
  REQUIRE(cachecar.process().wait_for_output("no answer within connect_timeout (300ms)", 5s));

  cachecar.rewrite_config(base + "700ms" + log);
  cachecar.process().signal(SIGHUP);
  REQUIRE(cachecar.process().wait_for_output("configuration reloaded", 5s));
  CHECK(cachecar.output().find("redis.connect_timeout") == std::string::npos);  // no restart
  CHECK(cachecar.process().wait_for_output("no answer within connect_timeout (700ms)", 10s));
  redis.resume();
  CHECK(cachecar.process().wait_for_output("connected again", 10s));
}

}  // namespace
}  // namespace cachecar::test
