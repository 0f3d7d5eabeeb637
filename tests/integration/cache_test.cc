// Cache-aside through Redis: hits, misses and fills, what is never stored, invalidation on
// writes (race-free), coalescing, the stored forms, keys, and Redis authentication.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n"
    "    invalidate: [products:list]\n"
    "  - path: /products\n"
    "    key: products:list\n"
    "    ttl: 60s\n"
    "    invalidate_on: [POST]\n"
    "  - path: /short/{id}\n"
    "    key: short:{id}\n"
    "    ttl: 1s\n"
    "  - path: /raw/{id}\n"
    "    key: raw:{id}\n"
    "    ttl: 30s\n"
    "    format: body\n"
    "  - path: /search\n"
    "    key: search\n"
    "    ttl: 60s\n"
    "    query: [q, page]\n"
    "  - path: /private/{id}\n"
    "    key: private:{id}\n"
    "    ttl: 60s\n"
    "    allow_authorization: true\n";

// A product API whose answers carry a version that every write bumps, so a test can tell a
// stale answer from a fresh one. Shared by value into the upstream's handler threads.
struct Products {
  std::mutex mutex;
  std::map<std::string, int> versions;
  std::atomic<int> slow_gets{0};  // the next N GETs wait 600 ms after reading their version

  UpstreamReply handle(const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.headers = {{"Content-Type", "application/json"}, {"ETag", "\"e1\""}};
    std::lock_guard<std::mutex> lock(mutex);
    int& version = versions[request.target];
    if (request.method == "GET" || request.method == "HEAD") {
      reply.body =
          R"({"target":")" + request.target + R"(","version":)" + std::to_string(version) + "}";
      if (slow_gets.load() > 0) {
        --slow_gets;
        reply.delay = std::chrono::milliseconds(600);
      }
    } else {
      ++version;
      reply.body = R"({"updated":)" + std::to_string(version) + "}";
    }
    return reply;
  }
};

struct CacheStack : Stack {
  explicit CacheStack(const std::string& extra_yaml = "") : Stack(extra_yaml, kRoutes) {
    upstream.set_handler(
        [products = products](const ReceivedRequest& r) { return products->handle(r); });
  }
  std::shared_ptr<Products> products = std::make_shared<Products>();
};

bool is_nil(RedisServer& redis, const std::string& key) { return !redis.get(key).has_value(); }

// Fills are fire-and-forget: the client may have its answer a moment before Redis has the
// entry. Waits (briefly) for `key` to hold a value `accept` likes.
template <typename Accept>
bool eventually_stored(RedisServer& redis, const std::string& key, Accept accept) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      auto value = redis.get(key);
      if (value && accept(*value)) {
        return true;
      }
    } catch (const std::exception&) {
      // WRONGTYPE until the fill replaces the value
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

bool is_envelope(const std::string& value) { return value.substr(0, 4) == "CCE1"; }
bool stored(RedisServer& redis, const std::string& key) {
  return eventually_stored(redis, key, [](const std::string&) { return true; });
}

TEST_CASE("cache: a miss is filled and the next read is a hit with the same response") {
  CacheStack stack;
  HttpConnection client(stack.port());
  auto miss = client.request("GET", "/products/42");
  auto hit = client.request("GET", "/products/42");
  CHECK(miss.header("X-Cache") == "MISS");
  CHECK(hit.header("X-Cache") == "HIT");
  CHECK(hit.status == miss.status);
  CHECK(hit.body == miss.body);
  CHECK(hit.header("Age").has_value());
  CHECK(std::stoi(*hit.header("Age")) <= 1);
  for (const auto& [name, value] : miss.headers) {
    if (name == "X-Cache" || name == "Age") {
      continue;
    }
    CAPTURE(name);
    CHECK(hit.header(name) == value);
  }
  CHECK(stack.upstream.request_count() == 1);

  CHECK(eventually_stored(stack.redis, "product:42", is_envelope));
  const long long ttl = stack.redis.ttl("product:42");
  CHECK(ttl >= 1);
  CHECK(ttl <= 60);
}

TEST_CASE("cache: an entry expires after its TTL") {
  CacheStack stack;
  CHECK(http_request(stack.port(), "GET", "/short/1").header("X-Cache") == "MISS");
  CHECK(http_request(stack.port(), "GET", "/short/1").header("X-Cache") == "HIT");
  std::this_thread::sleep_for(1300ms);
  CHECK(http_request(stack.port(), "GET", "/short/1").header("X-Cache") == "MISS");
  CHECK(stack.upstream.request_count() == 2);
  MESSAGE(stack.cachecar->output().substr(0, 3000));
}

TEST_CASE("cache: responses that are not safe to share are never stored") {
  CacheStack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = "{}";
    if (request.target == "/products/404") {
      reply.status = 404;
    } else if (request.target == "/products/cookie") {
      reply.headers = {{"Set-Cookie", "session=abc"}};
    } else if (request.target == "/products/private") {
      reply.headers = {{"Cache-Control", "max-age=60, private"}};
    } else if (request.target == "/products/nostore") {
      reply.headers = {{"Cache-Control", "no-store"}};
    } else if (request.target == "/products/vary") {
      reply.headers = {{"Vary", "Cookie"}};
    }
    return reply;
  });
  for (const char* id : {"404", "cookie", "private", "nostore", "vary"}) {
    CAPTURE(id);
    const std::string target = std::string("/products/") + id;
    stack.upstream.reset_counters();
    auto first = http_request(stack.port(), "GET", target);
    auto second = http_request(stack.port(), "GET", target);
    CHECK(first.header("X-Cache") == "BYPASS");
    CHECK(second.header("X-Cache") == "BYPASS");
    CHECK(stack.upstream.request_count() == 2);
    CHECK(is_nil(stack.redis, std::string("product:") + id));
  }
}

TEST_CASE("cache: a HEAD miss fills the cache, and HEAD and GET hits follow") {
  CacheStack stack;
  HttpConnection client(stack.port());
  client.send_raw("HEAD /products/5 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head_miss = client.read_response(/*head_request=*/true);
  REQUIRE(head_miss);
  CHECK(head_miss->header("X-Cache") == "MISS");
  CHECK(head_miss->body.empty());
  CHECK(stack.upstream.last_request()->method == "GET");

  auto get_hit = client.request("GET", "/products/5");
  CHECK(get_hit.header("X-Cache") == "HIT");
  CHECK(head_miss->header("Content-Length") == std::to_string(get_hit.body.size()));

  client.send_raw("HEAD /products/5 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head_hit = client.read_response(/*head_request=*/true);
  REQUIRE(head_hit);
  CHECK(head_hit->header("X-Cache") == "HIT");
  CHECK(head_hit->header("Content-Length") == std::to_string(get_hit.body.size()));
  CHECK(head_hit->body.empty());
  // Nothing stray was sent after the heads: the connection is still in step.
  CHECK(client.request("GET", "/products/5").header("X-Cache") == "HIT");
  CHECK(stack.upstream.request_count() == 1);
}

TEST_CASE("cache: PUT, PATCH and DELETE invalidate the key and its invalidate list") {
  CacheStack stack;
  HttpConnection client(stack.port());
  for (const char* method : {"PUT", "PATCH", "DELETE"}) {
    CAPTURE(method);
    client.request("GET", "/products/42");
    client.request("GET", "/products");
    REQUIRE(stored(stack.redis, "product:42"));
    REQUIRE(stored(stack.redis, "products:list"));

    auto write = client.request(method, "/products/42", {}, R"({"price":1})");
    CHECK(write.status == 200);
    CHECK(write.header("X-Cache") == "BYPASS");
    // Deleted before the answer reached the client.
    CHECK(is_nil(stack.redis, "product:42"));
    CHECK(is_nil(stack.redis, "products:list"));

    auto fresh = client.request("GET", "/products/42");
    CHECK(fresh.header("X-Cache") == "MISS");
  }
  // POST invalidates only where a route says so.
  client.request("GET", "/products");
  REQUIRE(stored(stack.redis, "products:list"));
  CHECK(client.request("POST", "/products", {}, "{}").status == 200);
  CHECK(is_nil(stack.redis, "products:list"));
}

TEST_CASE("cache: a write deletes every query variant of the key, and races none") {
  CacheStack stack;
  const int port = stack.port();
  for (const char* target : {"/search?q=a", "/search?q=b&page=2"}) {
    CAPTURE(target);
    CHECK(http_request(port, "GET", target).header("X-Cache") == "MISS");
  }
  REQUIRE(stored(stack.redis, "{search}?q=a"));
  REQUIRE(stored(stack.redis, "{search}?q=b&page=2"));
  CHECK(stack.redis.command({"ZCARD", "variants:{search}"}) == "2");
  const long long set_ttl = std::stoll(stack.redis.command({"PTTL", "variants:{search}"}));
  CHECK(set_ttl > 50'000);
  CHECK(set_ttl <= 60'000);
  CHECK(http_request(port, "GET", "/search?q=a").header("X-Cache") == "HIT");

  // A slow variant miss is under way when the write comes: it must not store afterwards.
  stack.products->slow_gets = 1;
  auto slow =
      std::async(std::launch::async, [port] { return http_request(port, "GET", "/search?q=c"); });
  REQUIRE(stack.upstream.wait_for_requests(3, 2s));
  CHECK(http_request(port, "PUT", "/search", {}, "{}").status == 200);
  CHECK(is_nil(stack.redis, "{search}?q=a"));
  CHECK(is_nil(stack.redis, "{search}?q=b&page=2"));
  CHECK(stack.redis.command({"EXISTS", "variants:{search}"}) == "0");
  CHECK(slow.get().status == 200);
  std::this_thread::sleep_for(100ms);  // the fill, had it been accepted, would have landed
  CHECK(is_nil(stack.redis, "{search}?q=c"));
  CHECK(http_request(port, "GET", "/search?q=a").header("X-Cache") == "MISS");
  CHECK(http_request(port, "GET", "/search?q=c").header("X-Cache") == "MISS");
}

TEST_CASE("cache: a write that fails invalidates nothing") {
  CacheStack stack;
  HttpConnection client(stack.port());
  client.request("GET", "/products/1");
  REQUIRE(stored(stack.redis, "product:1"));
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.status = 500;
    reply.body = "{}";
    return reply;
  });
  CHECK(client.request("PUT", "/products/1", {}, "{}").status == 500);
  CHECK_FALSE(is_nil(stack.redis, "product:1"));
}

TEST_CASE("cache: a slow miss that overlaps a PUT does not store the old version") {
  CacheStack stack;
  stack.products->slow_gets = 1;
  const int port = stack.port();
  // The miss reads version 0 at once, then takes 600 ms to answer.
  auto slow =
      std::async(std::launch::async, [port] { return http_request(port, "GET", "/products/9"); });
  REQUIRE(stack.upstream.wait_for_requests(1, 2s));
  // Meanwhile a write makes version 1 and invalidates the key.
  CHECK(http_request(port, "PUT", "/products/9", {}, "{}").status == 200);
  auto stale = slow.get();
  CHECK(stale.body.find(R"("version":0)") != std::string::npos);
  std::this_thread::sleep_for(100ms);  // the fill, had it been accepted, would have landed
  // The stale fill was refused: the next read goes to the upstream and sees version 1.
  auto next = http_request(port, "GET", "/products/9");
  CHECK(next.header("X-Cache") == "MISS");
  CHECK(next.body.find(R"("version":1)") != std::string::npos);
  CHECK(http_request(port, "GET", "/products/9").header("X-Cache") == "HIT");
}

TEST_CASE("cache: a read after a confirmed write never shares a fetch begun before it") {
  CacheStack stack;
  stack.products->slow_gets = 1;
  const int port = stack.port();
  // A miss reads version 0 and is slow to answer; a read that joined it would get that.
  auto slow =
      std::async(std::launch::async, [port] { return http_request(port, "GET", "/products/9"); });
  REQUIRE(stack.upstream.wait_for_requests(1, 2s));
  CHECK(http_request(port, "PUT", "/products/9", {}, "{}").status == 200);
  // The client has seen its write confirmed: its next read must show it.
  auto after = http_request(port, "GET", "/products/9");
  CHECK(after.header("X-Cache") == "MISS");
  CHECK(after.body.find(R"("version":1)") != std::string::npos);
  CHECK(slow.get().body.find(R"("version":0)") != std::string::npos);
  CHECK(stack.upstream.request_count() == 3);
}

TEST_CASE("cache: 50 concurrent misses for one key cause one upstream request") {
  CacheStack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.body = R"({"id":77})";
    reply.delay = std::chrono::milliseconds(300);
    return reply;
  });
  const int port = stack.port();
  std::vector<std::future<HttpResponse>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::async(std::launch::async,
                                 [port] { return http_request(port, "GET", "/products/77"); }));
  }
  int misses = 0;
  for (auto& client : clients) {
    auto response = client.get();
    CHECK(response.status == 200);
    CHECK(response.body == R"({"id":77})");
    misses += response.header("X-Cache") == "MISS" ? 1 : 0;
  }
  CHECK(stack.upstream.request_count() == 1);
  CHECK(misses == 1);
}

TEST_CASE("cache: an uncacheable response is never shared with waiting requests") {
  std::atomic<int> counter{0};  // before the stack: the upstream's threads use it until stop()
  CacheStack stack;
  stack.upstream.set_handler([&counter](const ReceivedRequest&) {
    UpstreamReply reply;
    const int n = ++counter;
    reply.headers = {{"Set-Cookie", "session=" + std::to_string(n)}};
    reply.body = std::to_string(n);
    reply.delay = std::chrono::milliseconds(200);
    return reply;
  });
  const int port = stack.port();
  std::vector<std::future<HttpResponse>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::async(std::launch::async,
                                 [port] { return http_request(port, "GET", "/products/c"); }));
  }
  std::set<std::string> cookies;
  for (auto& client : clients) {
    auto response = client.get();
    CHECK(response.status == 200);
    cookies.insert(response.header("Set-Cookie").value_or(""));
  }
  // Every client got its own session.
  CHECK(cookies.size() == 10);
}

TEST_CASE("cache: the lookups of concurrent requests share Redis reads (auto-pipelining)") {
  CacheStack stack;
  const int kClients = 50;
  std::vector<HttpConnection> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(stack.port());
    clients.back().request("GET", "/products/" + std::to_string(i));  // fill
  }
  for (int i = 0; i < kClients; ++i) {
    REQUIRE(eventually_stored(stack.redis, "product:" + std::to_string(i), is_envelope));
  }
  RedisStatsProbe probe(stack.redis.port());
  const long long commands_before = probe.stat("total_commands_processed");
  const long long reads_before = probe.stat("total_reads_processed");
  // Every request is on the wire before cachecar reads any, as under real concurrency.
  for (int i = 0; i < kClients; ++i) {
    clients[static_cast<size_t>(i)].send_raw("GET /products/" + std::to_string(i) +
                                             " HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  for (auto& client : clients) {
    auto response = client.read_response();
    REQUIRE(response);
    CHECK(response->header("X-Cache") == "HIT");
  }
  // Leave out the probe's INFO calls: a command counts once processed, a read at once.
  const long long commands = probe.stat("total_commands_processed") - commands_before - 2;
  const long long reads = probe.stat("total_reads_processed") - reads_before - 2;
  CAPTURE(commands);
  CAPTURE(reads);
  CHECK(commands == kClients);  // one MGET of value and guard per request
  // One round trip per request at most, and in practice far fewer: many requests' commands
  // arrive in one read.
  CHECK(reads <= kClients);
  CHECK(commands >= 4 * reads);
}

TEST_CASE("cache: format body reads a value another application wrote, and writes one") {
  CacheStack stack;
  stack.redis.command({"SET", "raw:7", R"({"id":7,"from":"app"})", "EX", "30"});
  auto hit = http_request(stack.port(), "GET", "/raw/7");
  CHECK(hit.header("X-Cache") == "HIT");
  CHECK(hit.body == R"({"id":7,"from":"app"})");
  CHECK(hit.header("Content-Type") == "application/json");
  CHECK(hit.header("Age").has_value());
  CHECK(stack.upstream.request_count() == 0);

  auto miss = http_request(stack.port(), "GET", "/raw/8");
  CHECK(miss.header("X-Cache") == "MISS");
  CHECK(eventually_stored(stack.redis, "raw:8",
                          [&](const std::string& value) { return value == miss.body; }));
}

TEST_CASE("cache: corrupt, foreign or wrongly typed values are misses, never served") {
  CacheStack stack;
  stack.redis.command({"SET", "product:13", "not an envelope"});
  stack.redis.command({"HSET", "product:14", "field", "value"});
  // A crafted envelope smuggling a Content-Length of its own.
  std::string crafted = "CCE1";
  crafted += std::string(8, '\0');
  crafted += std::string("\xc8\x00", 2);  // status 200
  const std::string lines = "Content-Length: 0\r\n";
  crafted += std::string(1, static_cast<char>(lines.size())) + std::string(3, '\0') + lines;
  crafted += std::string("\x04\x00\x00\x00", 4) + "evil";
  stack.redis.command({"SET", "product:15", crafted});

  for (const char* id : {"13", "14", "15"}) {
    CAPTURE(id);
    auto response = http_request(stack.port(), "GET", std::string("/products/") + id);
    CHECK(response.status == 200);
    CHECK(response.header("X-Cache") == "MISS");
    CHECK(response.body.find("version") != std::string::npos);
    // The fill replaced the bad value with a proper entry.
    CHECK(eventually_stored(stack.redis, std::string("product:") + id, is_envelope));
  }
  CHECK(stack.cachecar->output().find("treated as a miss") != std::string::npos);
}

TEST_CASE("cache: Authorization bypasses the cache unless the route allows it") {
  CacheStack stack;
  const HeaderList auth = {{"Authorization", "Bearer t"}};
  CHECK(http_request(stack.port(), "GET", "/products/1", auth).header("X-Cache") == "BYPASS");
  CHECK(http_request(stack.port(), "GET", "/products/1", auth).header("X-Cache") == "BYPASS");
  CHECK(is_nil(stack.redis, "product:1"));
  CHECK(http_request(stack.port(), "GET", "/private/1", auth).header("X-Cache") == "MISS");
  CHECK(http_request(stack.port(), "GET", "/private/1", auth).header("X-Cache") == "HIT");
}

TEST_CASE("cache: query strings are ignored or keyed as the route says") {
  CacheStack stack;
  CHECK(http_request(stack.port(), "GET", "/products/3?x=1").header("X-Cache") == "MISS");
  CHECK(http_request(stack.port(), "GET", "/products/3?x=2").header("X-Cache") == "HIT");

  CHECK(http_request(stack.port(), "GET", "/search?q=a&page=1&utm=x").header("X-Cache") == "MISS");
  CHECK(stored(stack.redis, "{search}?q=a&page=1"));
  CHECK(http_request(stack.port(), "GET", "/search?page=1&q=a").header("X-Cache") == "HIT");
  CHECK(http_request(stack.port(), "GET", "/search?q=b&page=1").header("X-Cache") == "MISS");
}

TEST_CASE("cache: key_prefix, cache.default and respect_cache_control") {
  CacheStack stack(
      "cache:\n  key_prefix: \"cc:\"\n  respect_cache_control: true\n  default:\n    ttl: 30s\n");
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = "{}";
    if (request.target == "/products/short") {
      reply.headers = {{"Cache-Control", "public, max-age=100, s-maxage=5"}};
    } else if (request.target == "/products/nocache") {
      reply.headers = {{"Cache-Control", "no-cache"}};
    }
    return reply;
  });
  CHECK(http_request(stack.port(), "GET", "/other?x=1").header("X-Cache") == "MISS");
  CHECK(http_request(stack.port(), "GET", "/other").header("X-Cache") == "MISS");
  CHECK(stored(stack.redis, "{cc:path:/other}?x=1"));
  CHECK(stored(stack.redis, "cc:path:/other"));
  CHECK(http_request(stack.port(), "GET", "/other?x=1").header("X-Cache") == "HIT");
  // A write to the path, routed or not, makes its entries stale: all of them go.
  CHECK(http_request(stack.port(), "PUT", "/other", {}, "{}").status == 200);
  CHECK(is_nil(stack.redis, "{cc:path:/other}?x=1"));
  CHECK(is_nil(stack.redis, "cc:path:/other"));
  CHECK(http_request(stack.port(), "GET", "/other?x=1").header("X-Cache") == "MISS");
  // A POST is an unsafe method too (RFC 9111 §4.4), on a path no route names.
  REQUIRE(stored(stack.redis, "{cc:path:/other}?x=1"));
  CHECK(http_request(stack.port(), "POST", "/other", {}, "{}").status == 200);
  CHECK(is_nil(stack.redis, "{cc:path:/other}?x=1"));

  http_request(stack.port(), "GET", "/products/short");
  REQUIRE(stored(stack.redis, "cc:product:short"));
  const long long ttl = stack.redis.ttl("cc:product:short");
  CHECK(ttl >= 1);
  CHECK(ttl <= 5);
  CHECK(http_request(stack.port(), "GET", "/products/nocache").header("X-Cache") == "BYPASS");
  CHECK(is_nil(stack.redis, "cc:product:nocache"));
}

TEST_CASE("cache: scripts lost by Redis (SCRIPT FLUSH) are sent again without a failure") {
  CacheStack stack;
  HttpConnection client(stack.port());
  client.request("GET", "/products/1");
  CHECK(stack.redis.command({"SCRIPT", "FLUSH"}) == "OK");
  CHECK(client.request("GET", "/products/2").header("X-Cache") == "MISS");
  // The fill met NOSCRIPT and went again as EVAL, a round trip later.
  CHECK(eventually_stored(stack.redis, "product:2", is_envelope));
  CHECK(client.request("GET", "/products/2").header("X-Cache") == "HIT");
  CHECK(client.request("PUT", "/products/2", {}, "{}").status == 200);
  CHECK(is_nil(stack.redis, "product:2"));
}

TEST_CASE("cache: Redis with a password, an ACL user and a database number") {
  RedisServer redis({"--requirepass", "s3cret"});
  TestUpstream upstream;
  auto products = std::make_shared<Products>();
  upstream.set_handler([products](const ReceivedRequest& r) { return products->handle(r); });
  const std::string base = "upstream:\n  url: " + upstream.url() + "\nroutes:\n" + kRoutes;
  {
    Cachecar cachecar(
        base + "redis:\n  url: redis://:s3cret@127.0.0.1:" + std::to_string(redis.port()) + "/2\n");
    REQUIRE(cachecar.process().wait_for_output("connected", 5s));
    CHECK(http_request(cachecar.port(), "GET", "/products/1").header("X-Cache") == "MISS");
    CHECK(http_request(cachecar.port(), "GET", "/products/1").header("X-Cache") == "HIT");
    CHECK(redis.command({"EVAL", "redis.call('SELECT', 2) return redis.call('EXISTS', KEYS[1])",
                         "1", "product:1"}) == "1");
    CHECK(redis.command({"EXISTS", "product:1"}) == "0");
  }
  CHECK(redis.command({"ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all"}) == "OK");
  {
    Cachecar cachecar(
        base + "redis:\n  url: redis://app:pw@127.0.0.1:" + std::to_string(redis.port()) + "\n");
    REQUIRE(cachecar.process().wait_for_output("connected", 5s));
    http_request(cachecar.port(), "GET", "/products/3");
    CHECK(http_request(cachecar.port(), "GET", "/products/3").header("X-Cache") == "HIT");
  }
  {
    Cachecar cachecar(
        base + "redis:\n  url: redis://app:wrong@127.0.0.1:" + std::to_string(redis.port()) + "\n");
    CHECK(cachecar.process().wait_for_output("handshake refused", 5s));
    auto response = http_request(cachecar.port(), "GET", "/products/4");
    CHECK(response.status == 200);
    CHECK(response.header("X-Cache") == "BYPASS");
  }
}

TEST_CASE("cache: hits larger than the socket takes at once reach a slow reader whole") {
  // A hit is written from one buffer the worker reuses; what the socket does not take at once
  // must be copied out before the next hit writes there. A 3 MiB hit is more than loopback
  // takes in one write; a reader that waits before reading leaves it queued, and the small hit
  // pipelined behind each big one is written into the same buffer.
  const std::string big = std::string(3 * 1024 * 1024, 'b') + "end";
  Stack stack("cache:\n  max_object_size: 4MiB\n", kRoutes);
  stack.upstream.set_handler([big](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.headers = {{"Content-Type", "text/plain"}};
    reply.body = request.target == "/products/big" ? big : "small:" + request.target;
    return reply;
  });
  {
    HttpConnection fill(stack.port());
    REQUIRE(fill.request("GET", "/products/big").body.size() == big.size());
    REQUIRE(fill.request("GET", "/products/7").body == "small:/products/7");
  }
  REQUIRE(stored(stack.redis, "product:big"));
  REQUIRE(stored(stack.redis, "product:7"));

  HttpConnection client(stack.port());
  const std::string big_then_small =
      build_request("GET", "/products/big", {}, {}) + build_request("GET", "/products/7", {}, {});
  client.send_raw(big_then_small + big_then_small + big_then_small);
  std::this_thread::sleep_for(200ms);  // the slow reader: cachecar's writes queue meanwhile
  for (int pair = 0; pair < 3; ++pair) {
    CAPTURE(pair);
    const auto large = client.read_response();
    const auto small = client.read_response();
    REQUIRE(large.has_value());
    REQUIRE(small.has_value());
    // Sizes and an equality flag: a failure must not print 3 MiB.
    CHECK(large->header("X-Cache") == "HIT");
    CHECK(large->complete);
    CHECK(large->body.size() == big.size());
    CHECK((large->body == big));
    CHECK(small->header("X-Cache") == "HIT");
    CHECK(small->body == "small:/products/7");
  }
  CHECK(stack.upstream.request_count() == 2);
}

}  // namespace
}  // namespace cachecar::test
