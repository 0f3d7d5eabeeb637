// Purge by key, prefix and tag (issue 18), through the admin API of one replica of a fleet of
// two that share a real Redis, in front of an upstream that names tags on its answers.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

const std::string kRoutes =
    "routes:\n"
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 300s\n"
    "  - path: /search\n"
    "    key: search\n"
    "    ttl: 300s\n"
    "    query: [q]\n";

// Every answer numbered, so a stored one is told from a fresh one; products tagged
// "product-<id> catalog" (Surrogate-Key), searches "search" (Cache-Tag). GETs of a target in
// `slow` wait before answering.
struct TaggingApi {
  std::mutex mutex;
  int answers = 0;
  std::map<std::string, std::chrono::milliseconds> slow;

  UpstreamReply handle(const ReceivedRequest& request) {
    UpstreamReply reply;
    std::lock_guard<std::mutex> lock(mutex);
    reply.body =
        R"({"target":")" + request.target + R"(","answer":)" + std::to_string(++answers) + "}";
    reply.headers = {{"Content-Type", "application/json"}};
    if (request.target.rfind("/products/", 0) == 0) {
      reply.headers.emplace_back("Surrogate-Key",
                                 "product-" + request.target.substr(10) + " catalog");
    } else {
      reply.headers.emplace_back("Cache-Tag", "search");
    }
    if (auto found = slow.find(request.target); found != slow.end()) {
      reply.delay = found->second;
    }
    return reply;
  }
};

struct Fleet {
  explicit Fleet(const std::string& extra = "",
                 std::vector<std::pair<std::string, std::string>> env = {})
      : api(std::make_shared<TaggingApi>()) {
    upstream.set_handler(
        [api = api](const ReceivedRequest& request) { return api->handle(request); });
    const std::string yaml = stack_yaml(upstream, redis) + kRoutes + extra;
    a = std::make_unique<Cachecar>(yaml, env);
    b = std::make_unique<Cachecar>(yaml, env);
    for (Cachecar* replica : {a.get(), b.get()}) {
      REQUIRE(replica->process().wait_for_output(": connected", 5s));
    }
  }

  HttpResponse get(Cachecar& replica, const std::string& target) {
    return http_request(replica.port(), "GET", target);
  }
  // A tagged miss is stored after its tags are recorded, a round trip after its answer.
  bool stored(const std::string& key) {
    return eventually([&] { return redis.command({"EXISTS", key}) == "1"; });
  }
  HttpResponse purge(const std::string& json, const HeaderList& headers = {}) {
    HeaderList all = headers;
    all.emplace_back("Content-Type", "application/json");
    return http_request(a->admin_port(), "POST", "/purge", all, json);
  }

  RedisServer redis;
  TestUpstream upstream;
  std::shared_ptr<TaggingApi> api;
  std::unique_ptr<Cachecar> a;
  std::unique_ptr<Cachecar> b;
};

std::string cache_of(const HttpResponse& response) {
  return response.header("X-Cache").value_or("");
}

TEST_CASE("purge: tags from the upstream are recorded, stripped, and purged fleet-wide") {
  Fleet fleet;
  const auto first = fleet.get(*fleet.a, "/products/1");
  CHECK(cache_of(first) == "MISS");
  CHECK_FALSE(first.header("Surrogate-Key"));  // stripped, as cache.tags.strip says
  REQUIRE(fleet.stored("product:1"));
  CHECK(cache_of(fleet.get(*fleet.b, "/products/1")) == "HIT");
  CHECK_FALSE(fleet.get(*fleet.b, "/products/1").header("Surrogate-Key"));
  CHECK(cache_of(fleet.get(*fleet.b, "/products/2")) == "MISS");
  const auto search = fleet.get(*fleet.a, "/search?q=tea");
  CHECK(cache_of(search) == "MISS");
  CHECK_FALSE(search.header("Cache-Tag"));
  REQUIRE(eventually([&] { return fleet.redis.command({"ZCARD", "tag:{catalog}"}) == "2"; }));
  CHECK(fleet.redis.command({"ZCARD", "tag:{product-1}"}) == "1");
  CHECK(fleet.redis.command({"ZCARD", "tag:{search}"}) == "1");

  const auto purged = fleet.purge(R"({"tags":["catalog"]})");
  CHECK(purged.status == 200);
  CHECK(
      purged.body ==
      R"({"complete":true,"pending":null,"purged":{"deleted":2,"kind":"tags","marked":0,"named":2},"soft":false})");
  for (Cachecar* replica : {fleet.a.get(), fleet.b.get()}) {
    CHECK(cache_of(fleet.get(*replica, "/search?q=tea")) == "HIT");  // another tag
  }
  CHECK(cache_of(fleet.get(*fleet.b, "/products/1")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.a, "/products/2")) == "MISS");
  CHECK(fleet.redis.command({"EXISTS", "tag:{catalog}:purged"}) == "1");
  // For the clock skew allowed (kTagClockSkew) a fill of a purged tag is not stored; then
  // caching resumes.
  std::this_thread::sleep_for(1100ms);
  CHECK(cache_of(fleet.get(*fleet.b, "/products/1")) == "MISS");
  REQUIRE(fleet.stored("product:1"));
  CHECK(cache_of(fleet.get(*fleet.a, "/products/1")) == "HIT");
  // Metrics and the access log say what was purged.
  const std::string metrics = http_request(fleet.a->admin_port(), "GET", "/metrics").body;
  CHECK(metrics.find("cachecar_purges_total{kind=\"tags\"} 1") != std::string::npos);
  CHECK(metrics.find("cachecar_purged_keys_total 2") != std::string::npos);
  CHECK(fleet.a->output().find("\"POST /purge\" 200") != std::string::npos);
}

TEST_CASE("purge: by key and by prefix, with every variant, on a fleet of two") {
  Fleet fleet;
  const std::pair<std::string, std::string> entries[] = {{"/products/1", "product:1"},
                                                         {"/products/2", "product:2"},
                                                         {"/search?q=a", "{search}?q=a"},
                                                         {"/search?q=b", "{search}?q=b"}};
  for (const auto& [target, key] : entries) {
    CHECK(cache_of(fleet.get(*fleet.a, target)) == "MISS");
    REQUIRE(fleet.stored(key));
    CHECK(cache_of(fleet.get(*fleet.b, target)) == "HIT");
  }
  const auto by_key = fleet.purge(R"({"keys":["product:1"]})");
  CHECK(by_key.status == 200);
  CHECK(by_key.body.find(R"("named":1)") != std::string::npos);
  CHECK(cache_of(fleet.get(*fleet.b, "/products/1")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.b, "/products/2")) == "HIT");
  // "search" itself was never stored: its query variants are found by their hash tag.
  const auto by_prefix = fleet.purge(R"({"prefix":"search"})");
  CHECK(by_prefix.status == 200);
  CHECK(by_prefix.body.find(R"("complete":true)") != std::string::npos);
  CHECK(by_prefix.body.find(R"("deleted":2)") != std::string::npos);
  CHECK(cache_of(fleet.get(*fleet.a, "/search?q=a")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.b, "/search?q=b")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.a, "/products/2")) == "HIT");
  // A prefix never reaches what is not the cache's: the app's sessions, the limiter's counts.
  fleet.redis.command({"SET", "sess:product-like", "{}"});
  CHECK(fleet.purge(R"({"prefix":"s"})").status == 200);
  CHECK(fleet.redis.command({"EXISTS", "sess:product-like"}) == "1");
}

TEST_CASE("purge: tags on a write's answer are purged with the write's own keys") {
  Fleet fleet;
  for (const auto& [target, key] :
       std::vector<std::pair<std::string, std::string>>{{"/products/1", "product:1"},
                                                        {"/products/2", "product:2"},
                                                        {"/search?q=a", "{search}?q=a"}}) {
    CHECK(cache_of(fleet.get(*fleet.a, target)) == "MISS");
    REQUIRE(fleet.stored(key));
  }
  // The answer to PUT /products/1 names "product-1 catalog": every catalog entry goes, on every
  // replica, before the answer is released.
  const auto written = http_request(fleet.b->port(), "PUT", "/products/1", {}, "{}");
  CHECK(written.status == 200);
  CHECK_FALSE(written.header("Surrogate-Key"));
  CHECK(fleet.redis.command({"EXISTS", "product:2"}) == "0");
  CHECK(cache_of(fleet.get(*fleet.a, "/products/2")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.a, "/search?q=a")) == "HIT");
  CHECK(fleet.redis.command({"EXISTS", "tag:{catalog}:purged"}) == "1");
}

TEST_CASE("purge: a fill begun before a purge never stores after it") {
  Fleet fleet;
  {
    std::lock_guard<std::mutex> lock(fleet.api->mutex);
    fleet.api->slow["/products/7"] = 700ms;
    fleet.api->slow["/products/8"] = 700ms;
  }
  // By tag: the slow fill's key is not in the tag's set yet when the purge reads it.
  auto tagged = std::async(std::launch::async, [&] { return fleet.get(*fleet.a, "/products/7"); });
  // By key: the purge moves the guard the slow fill's lookup read.
  auto keyed = std::async(std::launch::async, [&] { return fleet.get(*fleet.b, "/products/8"); });
  REQUIRE(fleet.upstream.wait_for_requests(2, 2s));
  CHECK(fleet.purge(R"({"tags":["product-7"],"keys":["product:8"]})").status == 200);
  CHECK(cache_of(tagged.get()) == "MISS");
  CHECK(cache_of(keyed.get()) == "MISS");
  std::this_thread::sleep_for(100ms);  // what a fill would take to land
  CHECK(fleet.redis.command({"EXISTS", "product:7"}) == "0");
  CHECK(fleet.redis.command({"EXISTS", "product:8"}) == "0");
  CHECK(cache_of(fleet.get(*fleet.a, "/products/7")) == "MISS");
  CHECK(cache_of(fleet.get(*fleet.a, "/products/8")) == "MISS");
}

TEST_CASE("purge: the token, and what is not a purge") {
  Fleet fleet("", {{"ADMIN_TOKEN", "s3cret-token"}});
  CHECK(cache_of(fleet.get(*fleet.a, "/products/1")) == "MISS");
  REQUIRE(fleet.stored("product:1"));
  const auto anonymous = fleet.purge(R"({"keys":["product:1"]})");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.header("WWW-Authenticate") == "Bearer");
  CHECK(
      fleet.purge(R"({"keys":["product:1"]})", {{"Authorization", "Bearer s3cret-tokem"}}).status ==
      401);
  CHECK(fleet.purge(R"({"keys":["product:1"]})", {{"Authorization", "Bearer s3cret"}}).status ==
        401);
  CHECK(cache_of(fleet.get(*fleet.a, "/products/1")) == "HIT");  // nothing was purged
  const HeaderList token = {{"Authorization", "Bearer s3cret-token"}};
  CHECK(fleet.purge(R"({"keys":["product:1"]})", token).status == 200);
  CHECK(cache_of(fleet.get(*fleet.a, "/products/1")) == "MISS");
  CHECK(fleet.a->output().find("s3cret-token") == std::string::npos);
  // Bad bodies get 400 and say why; a GET gets 405.
  CHECK(fleet.purge("not json", token).status == 400);
  CHECK(fleet.purge(R"({"keys":"product:1"})", token).status == 400);
  CHECK(fleet.purge(R"({})", token).body ==
        R"({"error":"nothing to purge: name keys, a prefix or tags"})");
  CHECK(fleet.purge(R"({"tags":["x"],"soft":"yes"})", token).status == 400);
  CHECK(http_request(fleet.a->admin_port(), "GET", "/purge").status == 405);
  // The connection goes on after a purge: two purges and a metrics read pipelined in one write.
  const std::string body = R"({"keys":["product:2"]})";
  const std::string purge_request =
      "POST /purge HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
      "s3cret-token\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  HttpConnection connection(fleet.a->admin_port());
  connection.send_raw(purge_request + purge_request + "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int expected : {200, 200, 200}) {
    const auto answer = connection.read_response();
    REQUIRE(answer);
    CHECK(answer->status == expected);
  }
}

TEST_CASE("purge: the cachecar purge command calls the admin API") {
  Fleet fleet("", {{"ADMIN_TOKEN", "cli-token"}});
  CHECK(cache_of(fleet.get(*fleet.a, "/products/3")) == "MISS");
  REQUIRE(fleet.stored("product:3"));
  const auto run = [&](std::vector<std::string> args, const std::string& token) {
    ChildProcessOptions options;
    options.env = {{"ADMIN_LISTEN", "127.0.0.1:" + std::to_string(fleet.a->admin_port())},
                   {"ADMIN_TOKEN", token}};
    args.insert(args.begin(), {"purge", "--config", fleet.a->config_path()});
    ChildProcess command(cachecar_binary(), args, options);
    const auto code = command.wait_exit(10s);
    return std::make_pair(code.value_or(-1), command.output());
  };
  const auto [refused, refusal] = run({"--key", "product:3"}, "wrong");
  CHECK(refused == 1);
  CHECK(refusal.find("Bearer") != std::string::npos);
  const auto [marked, soft_report] = run({"--soft", "--key", "product:3"}, "cli-token");
  CHECK(marked == 0);
  CHECK(soft_report.find(R"("soft":true)") != std::string::npos);
  CHECK(fleet.redis.get("product:3").value_or("").substr(0, 4) == "CCS1");
  const auto [purged, report] = run({"--key", "product:3", "--tag", "nothing"}, "cli-token");
  CHECK(purged == 0);
  CHECK(report.find(R"("kind":"keys+tags")") != std::string::npos);
  CHECK(fleet.redis.command({"EXISTS", "product:3"}) == "0");
  CHECK(run({"--nothing", "x"}, "cli-token").first == 2);
}

TEST_CASE("purge: during a Redis fault it is journaled and replayed on recovery") {
  Fleet fleet;
  CHECK(cache_of(fleet.get(*fleet.a, "/products/1")) == "MISS");
  REQUIRE(fleet.stored("product:1"));
  fleet.redis.pause();
  const auto owed = fleet.purge(R"({"keys":["product:1"]})");
  CHECK(owed.status == 202);
  CHECK(owed.body.find(R"("pending":"journal")") != std::string::npos);
  fleet.redis.resume();
  CHECK(eventually([&] { return fleet.redis.command({"EXISTS", "product:1"}) == "0"; }, 5s));
}

}  // namespace
}  // namespace cachecar::test
