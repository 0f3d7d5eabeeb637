// cache/plan.h: what cachecar does with a request, from its head and the configuration.

#include "cache/plan.h"

#include <doctest/doctest.h>

#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cache/key.h"
#include "redis/cluster_slots.h"
#include "unit_support.h"

namespace cachecar {
namespace {

// Routes, in order: 0 /products/{id}, 1 /products, 2 /me, 3 /products/special (shadowed by 0).
constexpr std::string_view kRoutes = R"(cache:
  key_prefix: "cc:"
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 60s
    invalidate: [products:list, "product:{id}:reviews"]
  - path: /products
    key: products:list
    ttl: 10s
    query: [page, sort]
    invalidate_on: [POST]
  - path: /me
    key: me
    ttl: 5s
    allow_authorization: true
  - path: /products/special
    key: special
    ttl: 1s
)";

// cache.default on, no prefix; route 0 /products/{id}.
constexpr std::string_view kDefault = R"(cache:
  default: {ttl: 30s}
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 60s
)";

constexpr std::string_view kDefaultWithPrefix = R"(cache:
  key_prefix: "cc:"
  default: {ttl: 30s}
)";

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;
using Keys = std::vector<std::string>;

std::string_view action_name(CacheAction action) {
  switch (action) {
    case CacheAction::Bypass:
      return "Bypass";
    case CacheAction::Lookup:
      return "Lookup";
    case CacheAction::Invalidate:
      return "Invalidate";
  }
  return "?";
}

struct Request {
  std::string_view method;
  std::string_view target;
  Fields headers = {};
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
};

struct Expected {
  CacheAction action;
  int route;  // index into config.routes; -1 for none
  std::string_view key = "";
  std::string_view guard = "";
  int64_t ttl_ms = 0;
  Keys invalidate_keys = {};
  Keys invalidate_guards = {};
  std::string_view upstream_target = "";  // "" when the client's target goes as it is
  std::string_view variants = "";         // a query variant's set, listed under its route key
};

struct Case {
  std::string_view yaml;
  Request request;
  Expected expected;
};

RequestHead make_head(const Request& r) {
  RequestHead head;
  head.method = std::string(r.method);
  head.target = std::string(r.target);
  for (const auto& [name, value] : r.headers) {
    head.headers.add(std::string(name), std::string(value));
  }
  head.framing = r.framing;
  head.content_length = r.content_length;
  return head;
}

void check_plan(const Case& c) {
  const Config config = parse_ok(c.yaml);
  const RequestHead head = make_head(c.request);
  const RequestPlan plan = plan_request(head, config);
  CAPTURE(plan.reason);
  CHECK(action_name(plan.action) == action_name(c.expected.action));
  if (c.expected.route < 0) {
    CHECK(plan.route == nullptr);
  } else {
    REQUIRE(static_cast<size_t>(c.expected.route) < config.routes.size());
    CHECK(plan.route == &config.routes[static_cast<size_t>(c.expected.route)]);
  }
  CHECK(plan.key == c.expected.key);
  CHECK(plan.guard_key == c.expected.guard);
  CHECK(plan.ttl == Duration(c.expected.ttl_ms));
  CHECK(plan.invalidate_keys == c.expected.invalidate_keys);
  CHECK(plan.invalidate_guards == c.expected.invalidate_guards);
  CHECK(plan.upstream_target == c.expected.upstream_target);
  CHECK(plan.variants_key == c.expected.variants);
  // Every invalidated key takes its query variants with it.
  REQUIRE(plan.invalidate_variants.size() == plan.invalidate_keys.size());
  REQUIRE(plan.invalidate_fences.size() == plan.invalidate_keys.size());
  // A bypass says why; the other plans have nothing to explain.
  CHECK(plan.reason.empty() == (c.expected.action != CacheAction::Bypass));
}

std::string describe(const Case& c) {
  std::string out = std::string(c.request.method) + " " + std::string(c.request.target);
  for (const auto& [name, value] : c.request.headers) {
    out += " [" + std::string(name) + ": " + std::string(value) + "]";
  }
  if (c.request.framing == BodyFraming::ContentLength) {
    out += " body=" + std::to_string(c.request.content_length);
  } else if (c.request.framing == BodyFraming::Chunked) {
    out += " chunked";
  }
  return out;
}

void run(const Case* begin, const Case* end) {
  for (const Case* c = begin; c != end; ++c) {
    const std::string request = describe(*c);
    CAPTURE(request);
    check_plan(*c);
  }
}

const Keys kProduct42Keys{"cc:product:42", "cc:products:list", "cc:product:42:reviews"};
const Keys kProduct42Guards{"cc:gen:{cc:product:42}", "cc:gen:{cc:products:list}",
                            "cc:gen:{cc:product:42:reviews}"};

TEST_CASE("plan_request: reads on a route are looked up") {
  const Case cases[] = {
      {kRoutes,
       {"GET", "/products/42"},
       {CacheAction::Lookup, 0, "cc:product:42", "cc:gen:{cc:product:42}", 60'000}},
      {kRoutes,
       {"HEAD", "/products/42"},
       {CacheAction::Lookup, 0, "cc:product:42", "cc:gen:{cc:product:42}", 60'000}},
      // A route without query params ignores the query, and keeps it from the upstream: an
      // answer stored under the key must not depend on what the key leaves out.
      {kRoutes,
       {"GET", "/products/42?x=1&page=2"},
       {CacheAction::Lookup,
        0,
        "cc:product:42",
        "cc:gen:{cc:product:42}",
        60'000,
        {},
        {},
        "/products/42"}},
      // Query params in the route's order; others are left out, of the key and the upstream's
      // target alike.
      {kRoutes,
       {"GET", "/products?x=1&sort=asc&page=2"},
       {CacheAction::Lookup,
        1,
        "{cc:products:list}?page=2&sort=asc",
        "cc:gen:{cc:products:list}",
        10'000,
        {},
        {},
        "/products?page=2&sort=asc",
        "cc:variants:{cc:products:list}"}},
      // Already in the key's form: the target goes as it is.
      {kRoutes,
       {"GET", "/products?page=2&sort=asc"},
       {CacheAction::Lookup,
        1,
        "{cc:products:list}?page=2&sort=asc",
        "cc:gen:{cc:products:list}",
        10'000,
        {},
        {},
        "",
        "cc:variants:{cc:products:list}"}},
      // Parameter cloaking: a second "page", or one hidden behind ';' in an unkeyed
      // parameter, would reach an upstream that reads the last value or splits on ';'.
      {kRoutes,
       {"GET", "/products?page=1&page=evil"},
       {CacheAction::Lookup,
        1,
        "{cc:products:list}?page=1",
        "cc:gen:{cc:products:list}",
        10'000,
        {},
        {},
        "/products?page=1",
        "cc:variants:{cc:products:list}"}},
      {kRoutes,
       {"GET", "/products?page=1&x=1;page=evil"},
       {CacheAction::Lookup,
        1,
        "{cc:products:list}?page=1",
        "cc:gen:{cc:products:list}",
        10'000,
        {},
        {},
        "/products?page=1",
        "cc:variants:{cc:products:list}"}},
      {kRoutes,
       {"GET", "/products"},
       {CacheAction::Lookup, 1, "cc:products:list", "cc:gen:{cc:products:list}", 10'000}},
      {kRoutes,
       {"GET", "/products?"},
       {CacheAction::Lookup, 1, "cc:products:list", "cc:gen:{cc:products:list}", 10'000}},
      {kRoutes,
       {"GET", "/products?page=1&page=2"},
       {CacheAction::Lookup,
        1,
        "{cc:products:list}?page=1",
        "cc:gen:{cc:products:list}",
        10'000,
        {},
        {},
        "/products?page=1",
        "cc:variants:{cc:products:list}"}},
      // The first matching route wins: /products/special is route 0's, not route 3's.
      {kRoutes,
       {"GET", "/products/special"},
       {CacheAction::Lookup, 0, "cc:product:special", "cc:gen:{cc:product:special}", 60'000}},
      // A request with Content-Length: 0 has no body to change the answer.
      {kRoutes,
       {"GET", "/products/42", {{"Content-Length", "0"}}, BodyFraming::ContentLength, 0},
       {CacheAction::Lookup, 0, "cc:product:42", "cc:gen:{cc:product:42}", 60'000}},
      // Other request fields do not matter.
      {kRoutes,
       {"GET", "/products/42", {{"Accept", "application/json"}, {"Cookie", "a=b"}}},
       {CacheAction::Lookup, 0, "cc:product:42", "cc:gen:{cc:product:42}", 60'000}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: reads that bypass the cache") {
  const Case cases[] = {
      {kRoutes, {"GET", "/nothing"}, {CacheAction::Bypass, -1}},
      {kRoutes, {"GET", "/products/"}, {CacheAction::Bypass, -1}},
      {kRoutes, {"GET", "/products/1/2"}, {CacheAction::Bypass, -1}},
      {kRoutes, {"HEAD", "/nothing?x=1"}, {CacheAction::Bypass, -1}},
      // Authorization, unless the route allows it.
      {kRoutes, {"GET", "/products/42", {{"Authorization", "Bearer t"}}}, {CacheAction::Bypass, 0}},
      {kRoutes, {"GET", "/products/42", {{"authorization", "Bearer t"}}}, {CacheAction::Bypass, 0}},
      {kRoutes, {"HEAD", "/products/42", {{"AUTHORIZATION", "Basic x"}}}, {CacheAction::Bypass, 0}},
      {kRoutes, {"GET", "/products?page=1", {{"Authorization", ""}}}, {CacheAction::Bypass, 1}},
      // A body could change the upstream's answer without changing the key.
      {kRoutes,
       {"GET", "/products/42", {{"Content-Length", "5"}}, BodyFraming::ContentLength, 5},
       {CacheAction::Bypass, 0}},
      {kRoutes,
       {"GET", "/products/42", {{"Content-Length", "1"}}, BodyFraming::ContentLength, 1},
       {CacheAction::Bypass, 0}},
      {kRoutes,
       {"GET", "/products/42", {{"Transfer-Encoding", "chunked"}}, BodyFraming::Chunked, 0},
       {CacheAction::Bypass, 0}},
      {kRoutes,
       {"HEAD", "/products/42", {{"Transfer-Encoding", "chunked"}}, BodyFraming::Chunked, 0},
       {CacheAction::Bypass, 0}},
      // A partial answer is not the entry.
      {kRoutes, {"GET", "/products/42", {{"Range", "bytes=0-10"}}}, {CacheAction::Bypass, 0}},
      {kRoutes, {"GET", "/products/42", {{"range", "bytes=0-"}}}, {CacheAction::Bypass, 0}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: allow_authorization lets a read with Authorization use the cache") {
  const Case cases[] = {
      {kRoutes,
       {"GET", "/me", {{"Authorization", "Bearer t"}}},
       {CacheAction::Lookup, 2, "cc:me", "cc:gen:{cc:me}", 5'000}},
      {kRoutes, {"GET", "/me"}, {CacheAction::Lookup, 2, "cc:me", "cc:gen:{cc:me}", 5'000}},
      // The other checks still apply.
      {kRoutes,
       {"GET", "/me", {{"Authorization", "Bearer t"}, {"Range", "bytes=0-1"}}},
       {CacheAction::Bypass, 2}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: writes on a route invalidate its keys") {
  const Case cases[] = {
      {kRoutes,
       {"PUT", "/products/42"},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      {kRoutes,
       {"PATCH", "/products/42"},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      {kRoutes,
       {"DELETE", "/products/42"},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      // The route key is taken without the query.
      {kRoutes,
       {"PUT", "/products/42?x=1"},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      // Bodies, Authorization and Range do not stop an invalidation.
      {kRoutes,
       {"PUT",
        "/products/42",
        {{"Content-Length", "7"}, {"Authorization", "Bearer t"}},
        BodyFraming::ContentLength,
        7},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      {kRoutes,
       {"PATCH", "/products/42", {{"Transfer-Encoding", "chunked"}}, BodyFraming::Chunked},
       {CacheAction::Invalidate, 0, "", "", 0, kProduct42Keys, kProduct42Guards}},
      {kRoutes,
       {"DELETE", "/products/7"},
       {CacheAction::Invalidate,
        0,
        "",
        "",
        0,
        {"cc:product:7", "cc:products:list", "cc:product:7:reviews"},
        {"cc:gen:{cc:product:7}", "cc:gen:{cc:products:list}", "cc:gen:{cc:product:7:reviews}"}}},
      // Route 1 invalidates on POST only, and its key without the query params.
      {kRoutes,
       {"POST", "/products?page=2&sort=asc"},
       {CacheAction::Invalidate,
        1,
        "",
        "",
        0,
        {"cc:products:list"},
        {"cc:gen:{cc:products:list}"}}},
      {kRoutes,
       {"POST", "/products"},
       {CacheAction::Invalidate,
        1,
        "",
        "",
        0,
        {"cc:products:list"},
        {"cc:gen:{cc:products:list}"}}},
      // The first matching route decides.
      {kRoutes,
       {"PUT", "/products/special"},
       {CacheAction::Invalidate,
        0,
        "",
        "",
        0,
        {"cc:product:special", "cc:products:list", "cc:product:special:reviews"},
        {"cc:gen:{cc:product:special}", "cc:gen:{cc:products:list}",
         "cc:gen:{cc:product:special:reviews}"}}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: a write takes the query variants of each key it invalidates") {
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = plan_request(make_head({"PUT", "/products/42"}), config);
  CHECK(plan.invalidate_variants == Keys{"cc:variants:{cc:product:42}",
                                         "cc:variants:{cc:products:list}",
                                         "cc:variants:{cc:product:42:reviews}"});
  CHECK(plan.invalidate_fences == Keys{"cc:fences:{cc:product:42}", "cc:fences:{cc:products:list}",
                                       "cc:fences:{cc:product:42:reviews}"});
  CHECK(plan.epoch_key == "cc:cachecar:epoch");
  CHECK(plan.epoch_read_key.empty());  // a write reads no epoch
  // The variant a read fills is in the set its route key's write clears, under the same guard.
  const RequestPlan read = plan_request(make_head({"GET", "/products?page=3"}), config);
  const RequestPlan write = plan_request(make_head({"POST", "/products"}), config);
  REQUIRE(write.invalidate_keys.size() == 1);
  CHECK(read.variants_key == write.invalidate_variants[0]);
  CHECK(read.guard_key == write.invalidate_guards[0]);
}

TEST_CASE(
    "plan_request: a lookup reads the epoch, on a Redis Cluster its copy in the guard's slot") {
  Config config = parse_ok(kRoutes);
  for (const char* target : {"/products/42", "/products?page=3"}) {
    CAPTURE(target);
    const RequestPlan single = plan_request(make_head({"GET", target}), config);
    CHECK(single.epoch_read_key == "cc:cachecar:epoch");
  }
  std::string reason;
  config.redis.url = *parse_redis_url("redis+cluster://127.0.0.1:7000", reason);
  for (const char* target : {"/products/42", "/products?page=3"}) {
    CAPTURE(target);
    const RequestPlan clustered = plan_request(make_head({"GET", target}), config);
    CHECK(clustered.epoch_key == "cc:cachecar:epoch");
    CHECK(clustered.epoch_read_key.starts_with("cc:cachecar:epoch{"));
    CHECK(key_hash_slot(clustered.epoch_read_key) == key_hash_slot(clustered.guard_key));
    CHECK(key_hash_slot(clustered.epoch_read_key) == key_hash_slot(clustered.key));
  }
}

TEST_CASE("plan_request: other methods bypass") {
  const Case cases[] = {
      // POST is not in the default invalidate_on.
      {kRoutes, {"POST", "/products/42"}, {CacheAction::Bypass, 0}},
      // Route 1 lists POST only.
      {kRoutes, {"PUT", "/products"}, {CacheAction::Bypass, 1}},
      {kRoutes, {"DELETE", "/products?page=1"}, {CacheAction::Bypass, 1}},
      {kRoutes, {"OPTIONS", "/products/42"}, {CacheAction::Bypass, 0}},
      {kRoutes, {"TRACE", "/products/42"}, {CacheAction::Bypass, 0}},
      // Methods are case-sensitive (RFC 9110 §9.1).
      {kRoutes, {"get", "/products/42"}, {CacheAction::Bypass, 0}},
      {kRoutes, {"put", "/products/42"}, {CacheAction::Bypass, 0}},
      // A write no route matches has nothing to invalidate.
      {kRoutes, {"PUT", "/nothing"}, {CacheAction::Bypass, -1}},
      {kRoutes, {"POST", "/nothing"}, {CacheAction::Bypass, -1}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: cache.default caches reads no route matches") {
  const Case cases[] = {
      {kDefault,
       {"GET", "/about"},
       {CacheAction::Lookup, -1, "path:/about", "gen:{path:/about}", 30'000}},
      {kDefault,
       {"HEAD", "/about"},
       {CacheAction::Lookup, -1, "path:/about", "gen:{path:/about}", 30'000}},
      // With a query: a variant of the path's entry, guarded and listed by it.
      {kDefault,
       {"GET", "/about?b=2&a=1"},
       {CacheAction::Lookup,
        -1,
        "{path:/about}?b=2&a=1",
        "gen:{path:/about}",
        30'000,
        {},
        {},
        "",
        "variants:{path:/about}"}},
      {kDefault, {"GET", "/"}, {CacheAction::Lookup, -1, "path:/", "gen:{path:/}", 30'000}},
      {kDefaultWithPrefix,
       {"GET", "/about?x"},
       {CacheAction::Lookup,
        -1,
        "{cc:path:/about}?x",
        "cc:gen:{cc:path:/about}",
        30'000,
        {},
        {},
        "",
        "cc:variants:{cc:path:/about}"}},
      // A matching route still uses its own key and TTL.
      {kDefault,
       {"GET", "/products/9?x=1"},
       {CacheAction::Lookup, 0, "product:9", "gen:{product:9}", 60'000, {}, {}, "/products/9"}},
      // The read checks apply to the default too.
      {kDefault, {"GET", "/about", {{"Authorization", "Bearer t"}}}, {CacheAction::Bypass, -1}},
      {kDefault, {"GET", "/about", {{"Range", "bytes=1-2"}}}, {CacheAction::Bypass, -1}},
      {kDefault,
       {"GET", "/about", {{"Content-Length", "3"}}, BodyFraming::ContentLength, 3},
       {CacheAction::Bypass, -1}},
      {kDefault,
       {"GET", "/about", {{"Content-Length", "0"}}, BodyFraming::ContentLength, 0},
       {CacheAction::Lookup, -1, "path:/about", "gen:{path:/about}", 30'000}},
      // A write invalidates the path's entry and, through its variant set, every query of it,
      // on every unsafe method, POST and methods of unknown safety included (RFC 9111 §4.4).
      {kDefault,
       {"PUT", "/about?x=1"},
       {CacheAction::Invalidate, -1, "", "", 0, {"path:/about"}, {"gen:{path:/about}"}}},
      {kDefault,
       {"DELETE", "/about"},
       {CacheAction::Invalidate, -1, "", "", 0, {"path:/about"}, {"gen:{path:/about}"}}},
      {kDefault,
       {"POST", "/about"},
       {CacheAction::Invalidate, -1, "", "", 0, {"path:/about"}, {"gen:{path:/about}"}}},
      {kDefault,
       {"PATCH", "/about"},
       {CacheAction::Invalidate, -1, "", "", 0, {"path:/about"}, {"gen:{path:/about}"}}},
      {kDefault,
       {"PROPPATCH", "/about"},
       {CacheAction::Invalidate, -1, "", "", 0, {"path:/about"}, {"gen:{path:/about}"}}},
      {kDefault, {"OPTIONS", "/about"}, {CacheAction::Bypass, -1}},
      {kDefault, {"TRACE", "/about"}, {CacheAction::Bypass, -1}},
      // Without cache.default, a write no route matches invalidates nothing.
      {kRoutes, {"PUT", "/about"}, {CacheAction::Bypass, -1}},
  };
  run(std::begin(cases), std::end(cases));
}

TEST_CASE("plan_request: the plan owns its keys") {
  // They stay valid after the request head is gone.
  const Config config = parse_ok(kRoutes);
  RequestPlan plan;
  {
    RequestHead head;
    head.method = "GET";
    head.target = "/products/abc?page=1";
    plan = plan_request(head, config);
  }
  CHECK(plan.action == CacheAction::Lookup);
  CHECK(plan.key == "cc:product:abc");
  CHECK(plan.guard_key == "cc:gen:{cc:product:abc}");
  CHECK(plan.route == &config.routes[0]);
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("plan_request in cache.mode: http") {
  const Config config = parse_ok(
      "cache:\n  mode: http\n  max_ttl: 2h\nroutes:\n  - path: /products/{id}\n"
      "    key: product:{id}\n    ttl: 60s\n");
  SUBCASE("any read is looked up, under the route's key or the path's") {
    const RequestPlan routed = plan_for(config, "GET", "/products/7", CacheAction::Lookup);
    CHECK(routed.key == "product:7");
    CHECK(routed.http_semantics);
    CHECK(routed.ttl == Duration(2 * 3600 * 1000));  // the origin decides, up to max_ttl
    const RequestPlan unrouted = plan_for(config, "HEAD", "/other?x=1", CacheAction::Lookup);
    CHECK(unrouted.http_semantics);
    CHECK(unrouted.guard_key == plan_for(config, "GET", "/other", CacheAction::Lookup).guard_key);
  }
  SUBCASE("Authorization is looked up: the answer decides whether it may be stored") {
    RequestHead head;
    head.method = "GET";
    head.target = "/other";
    head.headers.add("Authorization", "Bearer x");
    CHECK(plan_request(head, config).action == CacheAction::Lookup);
  }
  SUBCASE("an unsafe method invalidates the path without a route") {
    const RequestPlan write = plan_for(config, "POST", "/other", CacheAction::Invalidate);
    CHECK(write.invalidate_keys ==
          std::vector<std::string>{plan_for(config, "GET", "/other", CacheAction::Lookup).key});
  }
  SUBCASE("Location and Content-Location on the request's host join a write's keys") {
    RequestHead write;
    write.method = "POST";
    write.target = "/orders";
    write.headers.add("Host", "shop.example");
    RequestPlan plan = plan_request(write, config);
    REQUIRE(plan.action == CacheAction::Invalidate);
    ResponseHead answer;
    answer.status = 201;
    answer.headers.add("Location", "/products/9#top");
    answer.headers.add("Content-Location", "HTTP://Shop.Example/orders/1");
    add_response_invalidations(answer, write, config, plan);
    CHECK(plan.invalidate_keys ==
          std::vector<std::string>{"path:/orders", "product:9", "path:/orders/1"});
    CHECK(plan.invalidate_guards.size() == 3);
    CHECK(plan.invalidate_variants.size() == 3);
    CHECK(plan.invalidate_fences.size() == 3);
    CHECK(plan.invalidate_guards[1] == guard_key_for("", "product:9"));

    // Another origin, a scheme-relative reference, or a repeat add nothing.
    for (const char* other : {"http://elsewhere.example/products/1", "//shop.example/products/2",
                              "https://shop.example/products/3", "/products/9", "products/4"}) {
      CAPTURE(other);
      ResponseHead elsewhere;
      elsewhere.headers.add("Location", other);
      add_response_invalidations(elsewhere, write, config, plan);
      CHECK(plan.invalidate_keys.size() == 3);
    }
  }
  SUBCASE("a Vary variant is keyed in its key's slot, guarded and listed with it") {
    const RequestPlan routed = plan_for(config, "GET", "/products/7", CacheAction::Lookup);
    const RequestPlan variant = vary_variant_plan(routed, "d1g35t", "");
    CHECK(variant.key == "{product:7}#vary=d1g35t");
    CHECK(variant.guard_key == routed.guard_key);
    CHECK(variant.variants_key == variants_key_for("", "product:7"));
    // A query variant's Vary variant stays in its route key's slot and set.
    const Config queried = parse_ok(
        "cache:\n  mode: http\nroutes:\n  - path: /search\n    key: search\n"
        "    query: [q]\n");
    const RequestPlan query = plan_for(queried, "GET", "/search?q=a", CacheAction::Lookup);
    const RequestPlan both = vary_variant_plan(query, "d", "");
    CHECK(both.key == "{search}?q=a#vary=d");
    CHECK(both.variants_key == query.variants_key);
    // A user's entry: in the key's slot and set, named by a digest, never by the user.
    const RequestPlan own = per_user_plan(routed, "alice", "");
    CHECK(own.key.rfind("{product:7}#user=", 0) == 0);
    CHECK(own.key.size() == std::string_view("{product:7}#user=").size() + 32);
    CHECK(own.key.find("alice") == std::string::npos);
    CHECK(own.key != per_user_plan(routed, "bob", "").key);
    CHECK(own.key == per_user_plan(routed, "alice", "").key);
    CHECK(own.guard_key == routed.guard_key);
    CHECK(own.variants_key == variants_key_for("", "product:7"));
  }
  SUBCASE("mode routes: a write's answer adds nothing") {
    const Config routes = parse_ok("cache:\n  default: {ttl: 10s}\n");
    RequestHead write;
    write.method = "POST";
    write.target = "/orders";
    write.headers.add("Host", "shop.example");
    RequestPlan plan = plan_request(write, routes);
    ResponseHead answer;
    answer.headers.add("Location", "/orders/1");
    add_response_invalidations(answer, write, routes, plan);
    CHECK(plan.invalidate_keys.size() == 1);
  }
  SUBCASE("mode routes: no route and no cache.default is not looked up") {
    const Config routes = parse_ok("routes: []\n");
    CHECK(plan_for(routes, "GET", "/other", CacheAction::Bypass).reason == "no route matches");
  }
}

}  // namespace
}  // namespace cachecar
