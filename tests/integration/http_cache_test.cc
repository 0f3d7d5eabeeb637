// cache.mode: http (issue 16): freshness from the origin's headers, Age, the request's
// Cache-Control, conditional requests answered from the cache, revalidation with a 304,
// stale-if-error, Cache-Status; the real binary, Redis and a test upstream.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "origin.h"

namespace cachecar::test {
namespace {

constexpr const char* kHttpMode =
    "cache:\n  mode: http\n  revalidate_window: 120s\n  max_ttl: 1h\n";

struct HttpStack : Stack {
  explicit HttpStack(const std::string& extra = "") : Stack(std::string(kHttpMode) + extra) {
    upstream.set_handler([origin = origin](const ReceivedRequest& r) { return origin->handle(r); });
  }
  std::shared_ptr<Origin> origin = std::make_shared<Origin>();
};

UpstreamReply fresh_for(int seconds, std::string body, HeaderList extra = {}) {
  UpstreamReply reply;
  reply.headers = {{"Content-Type", "text/plain"},
                   {"Cache-Control", "max-age=" + std::to_string(seconds)}};
  for (auto& field : extra) {
    reply.headers.push_back(std::move(field));
  }
  reply.body = std::move(body);
  return reply;
}

bool stored(RedisServer& redis, const std::string& key) {
  return eventually([&] { return redis.get(key).has_value(); });
}

TEST_CASE("http mode: the origin's max-age decides; Age and Cache-Status tell the client") {
  HttpStack stack;
  stack.origin->set("/a", fresh_for(60, "alpha"));
  HttpConnection client(stack.port());
  const auto miss = client.request("GET", "/a");
  CHECK(miss.status == 200);
  CHECK(miss.header("X-Cache") == "MISS");
  CHECK(miss.header("Cache-Status") == "cachecar; fwd=uri-miss; fwd-status=200; stored");
  REQUIRE(stored(stack.redis, "path:/a"));
  // Without a validator: kept for its freshness only.
  const long long ttl = stack.redis.ttl("path:/a");
  CHECK(ttl > 55);
  CHECK(ttl <= 60);

  const auto hit = client.request("GET", "/a");
  CHECK(hit.body == "alpha");
  CHECK(hit.header("X-Cache") == "HIT");
  REQUIRE(hit.header("Cache-Status"));
  CHECK(hit.header("Cache-Status")->starts_with("cachecar; hit; ttl="));
  CHECK(hit.header("Age") == "0");
  CHECK(stack.upstream.request_count() == 1);
}

TEST_CASE("http mode: the age a response arrives with counts, in Age and against freshness") {
  HttpStack stack;
  stack.origin->set("/aged", fresh_for(100, "aged", {{"Age", "40"}}));
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/aged").header("X-Cache") == "MISS");
  REQUIRE(stored(stack.redis, "path:/aged"));
  CHECK(stack.redis.ttl("path:/aged") <= 60);  // 100 - 40
  const auto hit = client.request("GET", "/aged");
  CHECK(hit.header("X-Cache") == "HIT");
  REQUIRE(hit.header("Age"));
  CHECK(std::stoi(*hit.header("Age")) >= 40);
  CHECK(std::stoi(*hit.header("Age")) <= 42);
}

TEST_CASE("http mode: what a shared cache must not store") {
  HttpStack stack;
  stack.origin->set("/none", UpstreamReply{.body = "no lifetime"});
  stack.origin->set("/private", fresh_for(60, "p", {{"Cache-Control", "private"}}));
  stack.origin->set("/no-store", UpstreamReply{.headers = {{"Cache-Control", "no-store, max-age=60"}},
                                               .body = "n"});
  stack.origin->set("/cookie", fresh_for(60, "c", {{"Set-Cookie", "sid=1"}}));
  stack.origin->set("/vary-star", fresh_for(60, "v", {{"Vary", "*"}}));
  stack.origin->set("/auth", fresh_for(60, "a"));
  stack.origin->set("/auth-public",
                    UpstreamReply{.headers = {{"Cache-Control", "public, max-age=60"}}, .body = "ap"});
  struct Case {
    std::string target;
    HeaderList headers;
    bool stored;
  };
  const std::vector<Case> cases = {
      {"/none", {}, false},
      {"/private", {}, false},
      {"/no-store", {}, false},
      {"/cookie", {}, false},
      {"/vary-star", {}, false},
      {"/auth", {{"Authorization", "Bearer t"}}, false},
      {"/auth-public", {{"Authorization", "Bearer t"}}, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    stack.upstream.reset_counters();
    const auto first = http_request(stack.port(), "GET", c.target, c.headers);
    const auto second = http_request(stack.port(), "GET", c.target, c.headers);
    CHECK(first.status == 200);
    CHECK(second.header("X-Cache") == (c.stored ? "HIT" : "BYPASS"));
    CHECK(stack.upstream.request_count() == (c.stored ? 1u : 2u));
  }
  // A request's own no-store keeps its answer out of the cache.
  stack.origin->set("/asked-no-store", fresh_for(60, "x"));
  http_request(stack.port(), "GET", "/asked-no-store", {{"Cache-Control", "no-store"}});
  CHECK(http_request(stack.port(), "GET", "/asked-no-store").header("X-Cache") == "MISS");
}

TEST_CASE("http mode: a 204 is stored and served without a body or a Content-Length") {
  HttpStack stack;
  stack.origin->set("/empty", UpstreamReply{.status = 204,
                                            .headers = {{"Cache-Control", "max-age=60"},
                                                        {"ETag", "\"e1\""}}});
  HttpConnection client(stack.port());
  const auto miss = client.request("GET", "/empty");
  CHECK(miss.status == 204);
  CHECK(miss.header("X-Cache") == "MISS");
  REQUIRE(stored(stack.redis, "path:/empty"));
  for (int i = 0; i < 2; ++i) {
    // Pipelined behind a hit, so a body or a length where none belongs would misframe the
    // next response.
    client.send_raw(
        "GET /empty HTTP/1.1\r\nHost: test\r\n\r\nGET /empty HTTP/1.1\r\nHost: test\r\n\r\n");
    for (int j = 0; j < 2; ++j) {
      const auto hit = client.read_response();
      REQUIRE(hit);
      CHECK(hit->status == 204);
      CHECK(hit->header("X-Cache") == "HIT");
      CHECK(hit->header("ETag") == "\"e1\"");
      CHECK_FALSE(hit->header("Content-Length"));
      CHECK(hit->body.empty());
    }
  }
  CHECK(client.request("GET", "/empty", {{"If-None-Match", "\"e1\""}}).status == 304);
  CHECK(stack.origin->served_of("/empty") == 1);
}

TEST_CASE("http mode: the request's Cache-Control") {
  HttpStack stack;
  stack.origin->set("/r", fresh_for(60, "r"));
  HttpConnection client(stack.port());
  client.request("GET", "/r");
  REQUIRE(stored(stack.redis, "path:/r"));
  CHECK(client.request("GET", "/r").header("X-Cache") == "HIT");
  CHECK(stack.upstream.request_count() == 1);

  // no-cache, and a min-fresh the entry cannot meet: the origin is asked, and its answer
  // stored again. (max-age=0 accepts an entry of age 0, as RFC 9111 §5.2.1.1 reads.)
  for (const char* directive : {"no-cache", "min-fresh=120"}) {
    CAPTURE(directive);
    const auto forced = client.request("GET", "/r", {{"Cache-Control", directive}});
    CHECK(forced.header("X-Cache") == "MISS");
    REQUIRE(forced.header("Cache-Status"));
    CHECK(forced.header("Cache-Status")->starts_with("cachecar; fwd=request; fwd-status=200; ttl="));
    CHECK(forced.header("Cache-Status")->ends_with("; stored"));
  }
  CHECK(stack.upstream.request_count() == 3);
  // A max-age the entry meets, and a min-fresh it meets: served.
  CHECK(client.request("GET", "/r", {{"Cache-Control", "max-age=30, min-fresh=10"}})
            .header("X-Cache") == "HIT");
  CHECK(stack.upstream.request_count() == 3);
}

TEST_CASE("http mode: only-if-cached is answered from the cache or 504, never by the origin") {
  HttpStack stack;
  stack.origin->set("/oic", fresh_for(60, "cached"));
  stack.origin->set("/stale-oic", fresh_for(1, "stale", {{"Age", "1"}, {"ETag", "\"o\""}}));
  HttpConnection client(stack.port());
  const auto cold = client.request("GET", "/oic", {{"Cache-Control", "only-if-cached"}});
  CHECK(cold.status == 504);
  CHECK(cold.body == R"x({"error":"not cached (only-if-cached)"})x");
  CHECK(stack.upstream.request_count() == 0);
  client.request("GET", "/oic");
  client.request("GET", "/stale-oic");
  REQUIRE(stored(stack.redis, "path:/oic"));
  REQUIRE(stored(stack.redis, "path:/stale-oic"));
  const auto warm = client.request("GET", "/oic", {{"Cache-Control", "only-if-cached"}});
  CHECK(warm.status == 200);
  CHECK(warm.body == "cached");
  // Stored but stale: it would need the origin, which only-if-cached forbids.
  CHECK(client.request("GET", "/stale-oic", {{"Cache-Control", "only-if-cached"}}).status == 504);
  CHECK(stack.upstream.request_count() == 2);
}

TEST_CASE("http mode: a client's condition on a fresh entry is answered 304 by the cache") {
  HttpStack stack;
  stack.origin->set("/c", fresh_for(60, "conditional body",
                                    {{"ETag", "W/\"v1\""},
                                     {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/c");
  REQUIRE(stored(stack.redis, "path:/c"));

  const auto by_tag = client.request("GET", "/c", {{"If-None-Match", "\"v0\", \"v1\""}});
  CHECK(by_tag.status == 304);
  CHECK(by_tag.body.empty());
  CHECK(by_tag.header("ETag") == "W/\"v1\"");
  CHECK(by_tag.header("Cache-Control") == "max-age=60");
  CHECK_FALSE(by_tag.header("Content-Type"));
  CHECK(by_tag.header("X-Cache") == "HIT");

  const auto by_date =
      client.request("GET", "/c", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  CHECK(by_date.status == 304);
  // If-None-Match wins: another tag gets the whole response even with a matching date.
  const auto other = client.request("GET", "/c", {{"If-None-Match", "\"v2\""},
                                                  {"If-Modified-Since",
                                                   "Sun, 06 Nov 1994 08:49:37 GMT"}});
  CHECK(other.status == 200);
  CHECK(other.body == "conditional body");
  // The connection is still in step after the bodiless 304s.
  CHECK(client.request("GET", "/c").body == "conditional body");
  CHECK(stack.upstream.request_count() == 1);
}

TEST_CASE("http mode: a stale entry is revalidated; the origin's 304 refreshes it") {
  HttpStack stack;
  // Stale on arrival (Age equals max-age), with a validator: stored to be revalidated.
  stack.origin->set("/s", fresh_for(5, "stored body", {{"ETag", "\"v1\""}, {"Age", "5"}}));
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/s").header("X-Cache") == "MISS");
  REQUIRE(stored(stack.redis, "path:/s"));
  CHECK(stack.redis.ttl("path:/s") > 100);  // the revalidate window

  // The origin now confirms the stored body and gives it a minute.
  stack.origin->set("/s", fresh_for(60, "the origin never sends this", {{"ETag", "\"v1\""}}));
  const auto revalidated = client.request("GET", "/s");
  CHECK(revalidated.status == 200);
  CHECK(revalidated.body == "stored body");
  CHECK(revalidated.header("X-Cache") == "HIT");
  CHECK(revalidated.header("Cache-Control") == "max-age=60");
  REQUIRE(revalidated.header("Cache-Status"));
  CHECK(revalidated.header("Cache-Status")->starts_with("cachecar; fwd=stale; fwd-status=304;"));
  const auto asked = stack.upstream.last_request();
  REQUIRE(asked);
  CHECK(asked->header("If-None-Match") == "\"v1\"");
  CHECK(stack.origin->served["/s"] == 1);

  // Refreshed in Redis: fresh hits without the origin.
  CHECK(eventually([&] {
    return http_request(stack.port(), "GET", "/s").header("X-Cache") == "HIT" &&
           stack.upstream.request_count() == 2;
  }));
  CHECK(stack.redis.ttl("path:/s") > 150);  // 60 s fresh + the window
}

TEST_CASE("http mode: revalidation keeps the client's own condition apart from the cache's") {
  HttpStack stack;
  stack.origin->set("/k", fresh_for(1, "body one", {{"ETag", "\"v1\""}, {"Age", "1"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/k");
  REQUIRE(stored(stack.redis, "path:/k"));

  // The client holds v1, the cache asks about v1, the origin confirms: 304 to the client.
  stack.origin->set("/k", fresh_for(1, "unused", {{"ETag", "\"v1\""}, {"Age", "1"}}));
  const auto confirmed = client.request("GET", "/k", {{"If-None-Match", "\"v1\""}});
  CHECK(confirmed.status == 304);
  CHECK(confirmed.header("ETag") == "\"v1\"");

  // The client holds v0: it gets the confirmed body whole.
  const auto whole = client.request("GET", "/k", {{"If-None-Match", "\"v0\""}});
  CHECK(whole.status == 200);
  CHECK(whole.body == "body one");
  CHECK(stack.upstream.last_request()->header("If-None-Match") == "\"v1\"");

  // The origin changed: its 200 replaces the entry and reaches the client.
  stack.origin->set("/k", fresh_for(60, "body two", {{"ETag", "\"v2\""}}));
  const auto changed = client.request("GET", "/k", {{"If-None-Match", "\"v1\""}});
  CHECK(changed.status == 200);
  CHECK(changed.body == "body two");
  CHECK(changed.header("X-Cache") == "MISS");
  CHECK(eventually([&] { return http_request(stack.port(), "GET", "/k").body == "body two"; }));
}

TEST_CASE("http mode: stale-if-error stands in for a failing origin, unless forbidden") {
  HttpStack stack;
  stack.origin->set("/e", fresh_for(1, "last good", {{"Age", "1"},
                                                     {"Cache-Control", "stale-if-error=60"}}));
  stack.origin->set("/m", fresh_for(1, "must", {{"Age", "1"},
                                                {"Cache-Control", "stale-if-error=60"},
                                                {"Cache-Control", "must-revalidate"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/e");
  client.request("GET", "/m");
  REQUIRE(stored(stack.redis, "path:/e"));
  REQUIRE(stored(stack.redis, "path:/m"));

  stack.origin->set("/e", UpstreamReply{.status = 503, .body = "down"});
  stack.origin->set("/m", UpstreamReply{.status = 503, .body = "down"});
  const auto standing_in = client.request("GET", "/e");
  CHECK(standing_in.status == 200);
  CHECK(standing_in.body == "last good");
  CHECK(standing_in.header("X-Cache") == "HIT");
  REQUIRE(standing_in.header("Cache-Status"));
  CHECK(standing_in.header("Cache-Status")->find("detail=\"stale-if-error\"") != std::string::npos);
  CHECK(standing_in.header("Cache-Status")->find("fwd-status=503") != std::string::npos);

  const auto forbidden = client.request("GET", "/m");
  CHECK(forbidden.status == 503);
  CHECK(forbidden.body == "down");

  // An origin that resets the connection: the stale entry again.
  stack.origin->set("/e", UpstreamReply{.fault = UpstreamReply::Fault::ResetBeforeResponse});
  const auto reset = client.request("GET", "/e");
  CHECK(reset.status == 200);
  CHECK(reset.body == "last good");
  // A 404 is an answer, not an error: passed on.
  stack.origin->set("/e", UpstreamReply{.status = 404, .body = "gone"});
  CHECK(client.request("GET", "/e").status == 404);
}

TEST_CASE("http mode: cache.stale_if_error for responses that name no window") {
  HttpStack stack("  stale_if_error: 1m\n");
  stack.origin->set("/d", fresh_for(1, "default window", {{"Age", "1"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/d");
  REQUIRE(stored(stack.redis, "path:/d"));
  stack.upstream.stop();  // refused from now on
  const auto answer = client.request("GET", "/d");
  CHECK(answer.status == 200);
  CHECK(answer.body == "default window");
}

TEST_CASE("http mode: a write invalidates the path, and HEAD reads the stored entry") {
  HttpStack stack("  cache_status: with_key\n");
  stack.origin->set("/w", fresh_for(60, "before"));
  HttpConnection client(stack.port());
  client.request("GET", "/w");
  REQUIRE(stored(stack.redis, "path:/w"));
  client.send_raw("HEAD /w HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto head = client.read_response(/*head_request=*/true);
  REQUIRE(head);
  CHECK(head->header("X-Cache") == "HIT");
  CHECK(head->header("Content-Length") == "6");
  REQUIRE(head->header("Cache-Status"));
  CHECK(head->header("Cache-Status")->find("key=\"path:/w\"") != std::string::npos);

  stack.origin->set("/w", fresh_for(60, "after"));
  CHECK(client.request("POST", "/w", {}, "x").status == 200);
  const auto read = client.request("GET", "/w");
  CHECK(read.body == "after");
  CHECK(read.header("X-Cache") == "MISS");
}

TEST_CASE("http mode: a write's answer invalidates its same-host Location and Content-Location") {
  HttpStack stack;
  for (const char* target : {"/items/1", "/items/2", "/items/3", "/elsewhere"}) {
    stack.origin->set(target, fresh_for(60, target));
  }
  // Answers to writes elsewhere that name the cached items.
  stack.origin->set("/orders", UpstreamReply{.status = 201,
                                             .headers = {{"Location", "/items/1"},
                                                         {"Content-Location",
                                                          "http://test/items/2"}},
                                             .body = "created"});
  stack.origin->set("/moves", UpstreamReply{.status = 303,
                                            .headers = {{"Location", "http://other.example/elsewhere"}},
                                            .body = ""});
  stack.origin->set("/redirects", UpstreamReply{.status = 303,
                                                .headers = {{"Location", "/items/3"}},
                                                .body = ""});
  HttpConnection client(stack.port());
  for (const char* target : {"/items/1", "/items/2", "/items/3", "/elsewhere"}) {
    client.request("GET", target);
    REQUIRE(stored(stack.redis, std::string("path:") + target));
  }
  CHECK(client.request("POST", "/orders", {}, "x").status == 201);
  CHECK_FALSE(stack.redis.get("path:/items/1"));  // deleted before the answer was sent
  CHECK_FALSE(stack.redis.get("path:/items/2"));
  CHECK(client.request("POST", "/moves", {}, "x").status == 303);
  CHECK(stack.redis.get("path:/elsewhere"));  // another host's: not this cache's to drop
  CHECK(client.request("PUT", "/redirects", {}, "x").status == 303);
  CHECK_FALSE(stack.redis.get("path:/items/3"));  // a 3xx counts as success (RFC 9111 §4.4)
  CHECK(client.request("GET", "/items/1").header("X-Cache") == "MISS");
}

TEST_CASE("http mode under load: fresh, stale and conditional reads from many clients") {
  HttpStack stack;
  for (int i = 0; i < 20; ++i) {
    const std::string target = "/load/" + std::to_string(i);
    // Half stay fresh, half are stale on arrival and revalidated on every read.
    stack.origin->set(target, i % 2 == 0 ? fresh_for(60, target, {{"ETag", "\"e\""}})
                                         : fresh_for(1, target, {{"ETag", "\"e\""}, {"Age", "1"}}));
  }
  std::atomic<int> wrong{0};
  std::vector<std::future<int>> clients;
  for (int c = 0; c < 8; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      HttpConnection client(stack.port());
      int sent = 0;
      for (int n = 0; n < 150; ++n) {
        const std::string target = "/load/" + std::to_string((n * 7 + c) % 20);
        const bool conditional = n % 3 == 0;
        const auto response =
            conditional ? client.request("GET", target, {{"If-None-Match", "\"e\""}})
                        : client.request("GET", target);
        ++sent;
        const bool right = conditional ? (response.status == 304 || (response.status == 200 &&
                                                                      response.body == target))
                                       : (response.status == 200 && response.body == target);
        if (!right) {
          ++wrong;
        }
      }
      return sent;
    }));
  }
  int total = 0;
  for (auto& client : clients) {
    total += client.get();
  }
  CHECK(total == 8 * 150);
  CHECK(wrong == 0);
  // The fresh half was fetched about once each; the stale half revalidated, never refetched
  // whole after its first fill.
  std::lock_guard<std::mutex> lock(stack.origin->mutex);
  for (int i = 0; i < 20; ++i) {
    CAPTURE(i);
    CHECK(stack.origin->served["/load/" + std::to_string(i)] <= 8);
  }
}

TEST_CASE("http mode: one byte range is cut from a stored response; a miss fetches it whole") {
  HttpStack stack;
  stack.origin->set("/bytes", fresh_for(60, "0123456789", {{"ETag", "\"b1\""}}));
  HttpConnection client(stack.port());
  const auto miss = client.request("GET", "/bytes", {{"Range", "bytes=2-4"}});
  CHECK(miss.status == 200);  // the whole response, which is stored
  CHECK(miss.body == "0123456789");
  CHECK_FALSE(stack.upstream.last_request()->header("Range"));
  REQUIRE(stored(stack.redis, "path:/bytes"));

  const auto part = client.request("GET", "/bytes", {{"Range", "bytes=2-4"}});
  CHECK(part.status == 206);
  CHECK(part.body == "234");
  CHECK(part.header("Content-Range") == "bytes 2-4/10");
  CHECK(part.header("Content-Length") == "3");
  CHECK(part.header("X-Cache") == "HIT");
  const auto tail = client.request("GET", "/bytes", {{"Range", "bytes=-3"}});
  CHECK(tail.body == "789");
  const auto beyond = client.request("GET", "/bytes", {{"Range", "bytes=10-"}});
  CHECK(beyond.status == 416);
  CHECK(beyond.header("Content-Range") == "bytes */10");
  CHECK(beyond.body.empty());
  const auto other_tag =
      client.request("GET", "/bytes", {{"Range", "bytes=0-0"}, {"If-Range", "\"b0\""}});
  CHECK(other_tag.status == 200);
  CHECK(other_tag.body == "0123456789");
  CHECK(stack.upstream.request_count() == 1);
  // Several ranges go to the origin as they are.
  http_request(stack.port(), "GET", "/bytes", {{"Range", "bytes=0-0,2-2"}});
  CHECK(stack.upstream.last_request()->header("Range") == "bytes=0-0,2-2");
}

// An origin that answers in the language asked for, and says so with Vary.
UpstreamReply by_language(const ReceivedRequest& request, std::atomic<int>& fetches) {
  ++fetches;
  const std::string language = request.header("Accept-Language").value_or("none");
  UpstreamReply reply = fresh_for(60, "greeting in " + language,
                                  {{"Vary", "Accept-Language"}, {"Content-Language", language}});
  reply.delay = 200ms;  // long enough for concurrent misses to meet
  return reply;
}

TEST_CASE("http mode: Vary keeps one variant per value of the fields it names") {
  HttpStack stack;
  auto fetches = std::make_shared<std::atomic<int>>(0);
  stack.upstream.set_handler(
      [fetches](const ReceivedRequest& r) { return by_language(r, *fetches); });
  HttpConnection client(stack.port());
  const auto en = client.request("GET", "/v", {{"Accept-Language", "en"}});
  CHECK(en.body == "greeting in en");
  CHECK(en.header("X-Cache") == "MISS");
  REQUIRE(stored(stack.redis, "path:/v"));
  CHECK(stack.redis.get("path:/v") == "CCV1accept-language");  // the index

  const auto fr = client.request("GET", "/v", {{"Accept-Language", "fr"}});
  CHECK(fr.body == "greeting in fr");
  CHECK(fr.header("Cache-Status") == "cachecar; fwd=vary-miss; fwd-status=200; stored");
  CHECK(eventually([&] {
    return http_request(stack.port(), "GET", "/v", {{"Accept-Language", "fr"}}).header("X-Cache") ==
           "HIT";
  }));
  // Each request gets its own variant from the cache, however it spells its value.
  for (int i = 0; i < 3; ++i) {
    const auto again_en = client.request("GET", "/v", {{"accept-language", " en "}});
    CHECK(again_en.body == "greeting in en");
    CHECK(again_en.header("X-Cache") == "HIT");
    const auto again_fr = client.request("GET", "/v", {{"Accept-Language", "fr"}});
    CHECK(again_fr.body == "greeting in fr");
    CHECK(again_fr.header("X-Cache") == "HIT");
  }
  // Language ranges are case-insensitive: the same variant.
  const auto upper = client.request("GET", "/v", {{"Accept-Language", "FR"}});
  CHECK(upper.body == "greeting in fr");
  CHECK(upper.header("X-Cache") == "HIT");
  // A request without the field is a variant of its own.
  CHECK(client.request("GET", "/v").body == "greeting in none");
  CHECK(*fetches == 3);
  CHECK(eventually([&] { return stack.redis.command({"ZCARD", "variants:{path:/v}"}) == "3"; }));

  // A write deletes the key and every variant.
  CHECK(client.request("PUT", "/v", {}, "x").status == 200);
  CHECK_FALSE(stack.redis.get("path:/v"));
  CHECK(stack.redis.command({"EXISTS", "variants:{path:/v}"}) == "0");
  CHECK(client.request("GET", "/v", {{"Accept-Language", "fr"}}).header("X-Cache") == "MISS");
}

TEST_CASE("http mode: concurrent misses of one key share a fetch only with their own variant") {
  HttpStack stack;
  auto fetches = std::make_shared<std::atomic<int>>(0);
  stack.upstream.set_handler(
      [fetches](const ReceivedRequest& r) { return by_language(r, *fetches); });
  std::vector<std::future<std::pair<std::string, std::string>>> clients;
  for (int i = 0; i < 12; ++i) {
    const std::string language = i % 2 == 0 ? "en" : "de";
    clients.push_back(std::async(std::launch::async, [&stack, language] {
      const auto response =
          http_request(stack.port(), "GET", "/together", {{"Accept-Language", language}});
      return std::make_pair(language, response.body);
    }));
  }
  for (auto& client : clients) {
    const auto [language, body] = client.get();
    CAPTURE(language);
    CHECK(body == "greeting in " + language);
  }
  CHECK(*fetches >= 2);
}

TEST_CASE("http mode: Vary on Accept-Encoding keeps the encoded and plain bodies apart") {
  HttpStack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    const bool gzip =
        request.header("Accept-Encoding").value_or("").find("gzip") != std::string::npos;
    UpstreamReply reply = fresh_for(60, gzip ? std::string("\x1f\x8b-compressed") : "plain",
                                    {{"Vary", "Accept-Encoding"}});
    if (gzip) {
      reply.headers.emplace_back("Content-Encoding", "gzip");
    }
    return reply;
  });
  HttpConnection client(stack.port());
  client.request("GET", "/enc", {{"Accept-Encoding", "gzip"}});
  REQUIRE(stored(stack.redis, "path:/enc"));
  const auto plain = client.request("GET", "/enc");
  CHECK(plain.body == "plain");
  CHECK_FALSE(plain.header("Content-Encoding"));
  const auto compressed = client.request("GET", "/enc", {{"Accept-Encoding", "gzip"}});
  CHECK(compressed.header("Content-Encoding") == "gzip");
  CHECK(compressed.header("X-Cache") == "HIT");
}

TEST_CASE("http mode: stale-while-revalidate serves at once and refreshes once for the fleet") {
  HttpStack stack;
  // A second cachecar on the same Redis and upstream: a fleet of two.
  Cachecar second(stack_yaml(stack.upstream, stack.redis) + kHttpMode);
  REQUIRE(second.process().wait_for_output(": connected", 5s));
  std::atomic<int> version{1};
  std::atomic<int> refreshes{0};
  stack.upstream.set_handler([&](const ReceivedRequest& request) {
    UpstreamReply reply;
    if (request.header("If-None-Match")) {
      ++refreshes;
      reply.delay = 700ms;  // the stale answers must not wait for this
    }
    const int current = version.load();
    reply.headers = {{"ETag", "\"v" + std::to_string(current) + "\""},
                     {"Cache-Control", current == 1 ? "max-age=1, stale-while-revalidate=60"
                                                    : "max-age=60"}};
    if (current == 1) {
      reply.headers.emplace_back("Age", "1");  // stale on arrival
    }
    reply.body = "version " + std::to_string(current);
    return reply;
  });
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/swr").header("X-Cache") == "MISS");
  REQUIRE(stored(stack.redis, "path:/swr"));
  version = 2;

  // Both replicas, many requests at once: every answer is the stale entry, at once.
  std::vector<std::future<HttpResponse>> reads;
  for (int i = 0; i < 10; ++i) {
    const int port = i % 2 == 0 ? stack.port() : second.port();
    reads.push_back(std::async(std::launch::async, [port] {
      HttpConnection reader(port);
      reader.set_timeout(500ms);  // shorter than the refresh takes
      return reader.request("GET", "/swr");
    }));
  }
  for (auto& read : reads) {
    const HttpResponse response = read.get();
    CHECK(response.status == 200);
    CHECK(response.body == "version 1");
    CHECK(response.header("X-Cache") == "HIT");
  }
  // One refresh for the fleet, conditional, and then the fresh version is served.
  CHECK(eventually([&] {
    return http_request(second.port(), "GET", "/swr").body == "version 2";
  }, 5s));
  CHECK(refreshes == 1);
  CHECK(http_request(stack.port(), "GET", "/swr").header("X-Cache") == "HIT");
  CHECK(stack.upstream.request_count() == 2);  // the fill and the one refresh
}

TEST_CASE("http mode: a client's user header reaches no upstream, a background refresh's either") {
  HttpStack stack;
  stack.origin->set("/named", fresh_for(1, "anonymous", {{"Age", "1"},
                                                         {"Cache-Control", "stale-while-revalidate=60"},
                                                         {"Vary", "X-Session-User"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/named", {{"X-Session-User", "admin"}});
  REQUIRE(stored(stack.redis, "path:/named"));
  CHECK_FALSE(stack.upstream.last_request()->header("X-Session-User"));
  // A stale hit: its refresh is sent in the background, still without the client's header.
  CHECK(client.request("GET", "/named", {{"X-Session-User", "admin"}}).header("X-Cache") == "HIT");
  REQUIRE(stack.upstream.wait_for_requests(2, 2s));
  CHECK_FALSE(stack.upstream.last_request()->header("X-Session-User"));
  // And the variant is the anonymous one: the header never selected anything.
  CHECK(client.request("GET", "/named").header("X-Cache") == "HIT");
}

TEST_CASE("http mode: no stale-while-revalidate when the request or the response forbids it") {
  HttpStack stack;
  stack.origin->set("/strict", fresh_for(1, "old", {{"Age", "1"},
                                                    {"ETag", "\"s\""},
                                                    {"Cache-Control", "stale-while-revalidate=60"},
                                                    {"Cache-Control", "must-revalidate"}}));
  stack.origin->set("/lenient", fresh_for(1, "old", {{"Age", "1"},
                                                     {"Cache-Control", "stale-while-revalidate=60"}}));
  HttpConnection client(stack.port());
  client.request("GET", "/strict");
  client.request("GET", "/lenient");
  REQUIRE(stored(stack.redis, "path:/strict"));
  REQUIRE(stored(stack.redis, "path:/lenient"));
  stack.origin->set("/strict", fresh_for(60, "new", {{"ETag", "\"t\""}}));
  stack.origin->set("/lenient", fresh_for(60, "new"));
  CHECK(client.request("GET", "/strict").body == "new");  // must-revalidate: asked first
  CHECK(client.request("GET", "/lenient", {{"Cache-Control", "no-cache"}}).body == "new");
}

TEST_CASE("http mode: a field the client names in Connection cannot select another's variant") {
  HttpStack stack;
  std::atomic<int> fetches{0};
  stack.upstream.set_handler([&](const ReceivedRequest& request) {
    UpstreamReply reply = by_language(request, fetches);
    // Stale on arrival, served while refreshed.
    reply.headers = {{"Vary", "Accept-Language"},
                     {"Cache-Control", "max-age=1, stale-while-revalidate=60"},
                     {"Age", "1"}};
    reply.delay = 0ms;
    return reply;
  });
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/lang", {{"Accept-Language", "fr"}}).body == "greeting in fr");
  REQUIRE(stored(stack.redis, "path:/lang"));
  // The upstream never sees a field named in Connection: this request is not the fr variant's.
  for (int i = 0; i < 3; ++i) {
    HttpConnection attacker(stack.port());
    const auto answer = attacker.request(
        "GET", "/lang", {{"Accept-Language", "fr"}, {"Connection", "Accept-Language"}});
    CHECK(answer.body == "greeting in none");
  }
  std::this_thread::sleep_for(300ms);  // any refresh the attack could have started has ended
  for (int i = 0; i < 3; ++i) {
    CHECK(client.request("GET", "/lang", {{"Accept-Language", "fr"}}).body == "greeting in fr");
  }
}

TEST_CASE("http mode: requests coalesced on a fetch get the Age it arrived with") {
  HttpStack stack;
  UpstreamReply old = fresh_for(600, "old news", {{"Age", "100"}});
  old.delay = 300ms;
  stack.origin->set("/old", old);
  std::vector<std::future<HttpResponse>> reads;
  for (int i = 0; i < 6; ++i) {
    reads.push_back(std::async(std::launch::async,
                               [&stack] { return http_request(stack.port(), "GET", "/old"); }));
  }
  for (auto& read : reads) {
    const HttpResponse response = read.get();
    CHECK(response.body == "old news");
    if (response.header("X-Cache") == "HIT") {
      REQUIRE(response.header("Age"));
      CHECK(std::stoi(*response.header("Age")) >= 100);
    }
  }
  CHECK(stack.origin->served["/old"] == 1);
}

}  // namespace
}  // namespace cachecar::test
