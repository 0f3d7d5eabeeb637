// Soft purges (issue 18, "soft": true): entries marked stale in place rather than deleted, on a
// fleet of two replicas sharing a real Redis. In cache.mode: http a marked entry is a stale
// response like any other (RFC 9111 §4.2.4, RFC 5861): revalidated with its validator, served
// while revalidating, or standing in for a failing origin; with routes it is a miss.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "harness.h"
#include "origin.h"

namespace cachecar::test {
namespace {

UpstreamReply answer(std::string body, std::string cache_control, std::string etag) {
  UpstreamReply reply;
  reply.headers = {{"Content-Type", "text/plain"},
                   {"Cache-Control", std::move(cache_control)},
                   {"ETag", std::move(etag)},
                   {"Surrogate-Key", "all"}};
  reply.body = std::move(body);
  return reply;
}

struct Fleet {
  explicit Fleet(const std::string& cache_yaml) : origin(std::make_shared<Origin>()) {
    upstream.set_handler([origin = origin](const ReceivedRequest& r) { return origin->handle(r); });
    const std::string yaml = stack_yaml(upstream, redis) + cache_yaml;
    a = std::make_unique<Cachecar>(yaml);
    b = std::make_unique<Cachecar>(yaml);
    for (Cachecar* replica : {a.get(), b.get()}) {
      REQUIRE(replica->process().wait_for_output(": connected", 5s));
    }
  }

  HttpResponse purge(const std::string& json) {
    return http_request(a->admin_port(), "POST", "/purge", {{"Content-Type", "application/json"}},
                        json);
  }
  std::string magic(const std::string& key) { return redis.get(key).value_or("").substr(0, 4); }
  bool stored_as(const std::string& key, const std::string& wanted) {
    return eventually([&] { return magic(key) == wanted; });
  }

  RedisServer redis;
  TestUpstream upstream;
  std::shared_ptr<Origin> origin;
  std::unique_ptr<Cachecar> a;
  std::unique_ptr<Cachecar> b;
};

constexpr const char* kHttpMode = "cache:\n  mode: http\n  max_ttl: 1h\n";

std::string cache_status(const HttpResponse& response) {
  return response.header("Cache-Status").value_or("");
}

TEST_CASE("soft purge, mode http: served while one replica revalidates it for the fleet") {
  Fleet fleet(kHttpMode);
  fleet.origin->set("/a", answer("one", "max-age=300, stale-while-revalidate=60", "\"v1\""));
  CHECK(http_request(fleet.a->port(), "GET", "/a").header("X-Cache") == "MISS");
  REQUIRE(fleet.stored_as("path:/a", "CCE1"));
  CHECK(http_request(fleet.b->port(), "GET", "/a").header("X-Cache") == "HIT");
  const int64_t ttl_before = fleet.redis.ttl("path:/a");

  // By tag: the background refresh's fill passes the tag's check at once (its lookup read the
  // purge's mark), so the fleet is not left serving the stale entry behind the refresh's lease.
  const auto purged = fleet.purge(R"({"tags":["all"],"soft":true})");
  CHECK(purged.status == 200);
  CHECK(
      purged.body ==
      R"({"complete":true,"pending":null,"purged":{"deleted":0,"kind":"tags","marked":1,"named":1},"soft":true})");
  // Kept in place, with its TTL: marked, not rewritten.
  CHECK(fleet.magic("path:/a") == "CCS1");
  CHECK(fleet.redis.ttl("path:/a") <= ttl_before);
  CHECK(fleet.redis.ttl("path:/a") >= ttl_before - 2);

  // The origin changed. Both replicas answer at once from the stale entry; one conditional
  // request refreshes it, and the new version is served from then on.
  fleet.origin->set("/a", answer("two", "max-age=300, stale-while-revalidate=60", "\"v2\""));
  for (Cachecar* replica : {fleet.a.get(), fleet.b.get(), fleet.a.get(), fleet.b.get()}) {
    const auto stale = http_request(replica->port(), "GET", "/a");
    CHECK(stale.status == 200);
    CHECK((stale.body == "one" || stale.body == "two"));
  }
  CHECK(fleet.stored_as("path:/a", "CCE1"));
  CHECK(eventually([&] { return http_request(fleet.b->port(), "GET", "/a").body == "two"; }));
  CHECK(fleet.origin->served_of("/a") == 2);  // the miss, and one refresh for the fleet
  const auto fresh = http_request(fleet.a->port(), "GET", "/a");
  CHECK(fresh.body == "two");
  CHECK(cache_status(fresh).starts_with("cachecar; hit"));
  const std::string metrics = http_request(fleet.a->admin_port(), "GET", "/metrics").body;
  CHECK(metrics.find("cachecar_soft_purges_total 1") != std::string::npos);
  CHECK(metrics.find("cachecar_purge_marked_keys_total 1") != std::string::npos);
  CHECK(fleet.a->output().find("soft purge from") != std::string::npos);
}

TEST_CASE("soft purge, mode http: revalidated with its validator; a 304 keeps the body") {
  Fleet fleet(kHttpMode);
  fleet.origin->set("/b", answer("kept body", "max-age=300", "\"v1\""));
  CHECK(http_request(fleet.a->port(), "GET", "/b").header("X-Cache") == "MISS");
  REQUIRE(fleet.stored_as("path:/b", "CCE1"));

  REQUIRE(fleet.purge(R"({"tags":["all"],"soft":true})").status == 200);
  CHECK(fleet.magic("path:/b") == "CCS1");
  // The tag's set keeps its members: the entries are still there for a later purge to find.
  CHECK(fleet.redis.command({"ZCARD", "tag:{all}"}) == "1");

  // At once: the lookup read the purge's mark, so the tag check knows the refill came after it.
  // The origin's 304 names one more tag: the refreshed entry is recorded under it.
  UpstreamReply retagged = answer("never sent", "max-age=300", "\"v1\"");
  retagged.headers.back().second = "all renamed";
  fleet.origin->set("/b", retagged);
  const auto revalidated = http_request(fleet.b->port(), "GET", "/b");
  CHECK(revalidated.status == 200);
  CHECK(revalidated.body == "kept body");
  CHECK(cache_status(revalidated).starts_with("cachecar; fwd=stale; fwd-status=304"));
  CHECK(fleet.origin->confirmed_of("/b") == 1);
  CHECK(fleet.origin->served_of("/b") == 1);
  // Refreshed in Redis: fresh again, for both replicas, without the origin.
  CHECK(fleet.stored_as("path:/b", "CCE1"));
  for (Cachecar* replica : {fleet.a.get(), fleet.b.get()}) {
    CHECK(cache_status(http_request(replica->port(), "GET", "/b")).starts_with("cachecar; hit"));
  }
  CHECK(fleet.origin->confirmed_of("/b") == 1);
  CHECK(fleet.redis.command({"ZCARD", "tag:{renamed}"}) == "1");
  CHECK(fleet.purge(R"({"tags":["renamed"]})").body.find(R"("deleted":1)") != std::string::npos);
  CHECK(fleet.redis.command({"EXISTS", "path:/b"}) == "0");
}

TEST_CASE("soft purge, mode http: the stale entry stands in for a failing origin") {
  Fleet fleet(kHttpMode);
  fleet.origin->set("/c", answer("last good", "max-age=300, stale-if-error=60", "\"v1\""));
  fleet.origin->set("/d", answer("no stand-in", "max-age=300", "\"v1\""));
  for (const char* target : {"/c", "/d"}) {
    CHECK(http_request(fleet.a->port(), "GET", target).header("X-Cache") == "MISS");
  }
  REQUIRE(fleet.stored_as("path:/c", "CCE1"));
  REQUIRE(fleet.stored_as("path:/d", "CCE1"));
  REQUIRE(fleet.purge(R"({"prefix":"path:/","soft":true})").body.find(R"("marked":2)") !=
          std::string::npos);

  fleet.origin->set("/c", UpstreamReply{.status = 503, .body = "down"});
  fleet.origin->set("/d", UpstreamReply{.status = 503, .body = "down"});
  const auto standing_in = http_request(fleet.b->port(), "GET", "/c");
  CHECK(standing_in.status == 200);
  CHECK(standing_in.body == "last good");
  CHECK(cache_status(standing_in).find("detail=\"stale-if-error\"") != std::string::npos);
  // Without stale-if-error a soft-purged entry is as stale as any: the origin's answer passes.
  const auto failed = http_request(fleet.b->port(), "GET", "/d");
  CHECK(failed.status == 503);
  CHECK(fleet.magic("path:/c") == "CCS1");  // a failure stores nothing over it

  // A later hard purge removes what a soft one kept.
  const auto hard = fleet.purge(R"({"keys":["path:/c","path:/d"]})");
  CHECK(hard.body.find(R"("deleted":2)") != std::string::npos);
  CHECK(fleet.redis.command({"EXISTS", "path:/c"}) == "0");
}

TEST_CASE("soft purge, mode http: a near cache never keeps a marked entry as fresh") {
  Fleet fleet("cache:\n  mode: http\n  max_ttl: 1h\n  near: {max_bytes: 1MiB, max_ttl: 60s}\n");
  fleet.origin->set("/n", answer("near", "max-age=300, stale-if-error=60", "\"v1\""));
  CHECK(http_request(fleet.a->port(), "GET", "/n").header("X-Cache") == "MISS");
  REQUIRE(fleet.stored_as("path:/n", "CCE1"));
  CHECK(http_request(fleet.a->port(), "GET", "/n").header("X-Cache") == "HIT");
  REQUIRE(fleet.purge(R"({"keys":["path:/n"],"soft":true})").status == 200);

  // Every read of the marked entry asks the origin, which fails: the entry stands in each time,
  // never as a fresh hit from a worker's memory.
  fleet.origin->set("/n", UpstreamReply{.status = 503, .body = "down"});
  const size_t asked = fleet.upstream.request_count();
  for (int i = 1; i <= 3; ++i) {
    const auto standing_in = http_request(fleet.a->port(), "GET", "/n");
    CHECK(standing_in.body == "near");
    CHECK(cache_status(standing_in).find("stale-if-error") != std::string::npos);
    CHECK(fleet.upstream.request_count() == asked + static_cast<size_t>(i));
  }
}

TEST_CASE("soft purge, routes: a miss, whose answer replaces the marked entry") {
  Fleet fleet(
      "routes:\n"
      "  - path: /products/{id}\n"
      "    key: product:{id}\n"
      "    ttl: 300s\n"
      "  - path: /plain/{id}\n"
      "    key: plain:{id}\n"
      "    ttl: 300s\n"
      "    format: body\n"
      "    content_type: text/plain\n");
  fleet.origin->set("/products/1", answer("first", "max-age=300", "\"v1\""));
  fleet.origin->set("/plain/1", answer("plain", "max-age=300", "\"p1\""));
  for (const char* target : {"/products/1", "/plain/1"}) {
    CHECK(http_request(fleet.a->port(), "GET", target).header("X-Cache") == "MISS");
  }
  REQUIRE(fleet.stored_as("product:1", "CCE1"));
  REQUIRE(eventually([&] { return fleet.redis.get("plain:1") == "plain"; }));

  const auto purged = fleet.purge(R"({"keys":["product:1","plain:1"],"soft":true})");
  CHECK(purged.body.find(R"("marked":2)") != std::string::npos);
  CHECK(fleet.magic("product:1") == "CCS1");
  // A bare body has no room for the mark: it goes.
  CHECK(fleet.redis.command({"EXISTS", "plain:1"}) == "0");

  fleet.origin->set("/products/1", answer("second", "max-age=300", "\"v2\""));
  const auto refetched = http_request(fleet.b->port(), "GET", "/products/1");
  CHECK(refetched.header("X-Cache") == "MISS");
  CHECK(refetched.body == "second");
  CHECK(fleet.stored_as("product:1", "CCE1"));
  CHECK(http_request(fleet.a->port(), "GET", "/products/1").header("X-Cache") == "HIT");
}

TEST_CASE("soft purge: a fill begun before it never stores after it") {
  Fleet fleet(kHttpMode);
  UpstreamReply slow = answer("before the purge", "max-age=300", "\"v1\"");
  slow.delay = 700ms;
  fleet.origin->set("/slow", slow);
  auto filling =
      std::async(std::launch::async, [&] { return http_request(fleet.a->port(), "GET", "/slow"); });
  REQUIRE(fleet.upstream.wait_for_requests(1, 2s));
  CHECK(fleet.purge(R"({"keys":["path:/slow"],"soft":true})").status == 200);
  CHECK(filling.get().header("X-Cache") == "MISS");
  // The fill was sent, and refused: the purge moved the guard its lookup read.
  CHECK(eventually([&] {
    return http_request(fleet.a->admin_port(), "GET", "/metrics")
               .body.find("cachecar_cache_fills_refused_total 1\n") != std::string::npos;
  }));
  CHECK(fleet.redis.command({"EXISTS", "path:/slow"}) == "0");
}

}  // namespace
}  // namespace cachecar::test
