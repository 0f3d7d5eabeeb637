// cache/cacheability.h: whether an upstream response may be stored and shared, and for how long.

#include "cache/cacheability.h"

#include <doctest/doctest.h>

#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {
namespace {

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

constexpr Duration kRouteTtl{60'000};

struct Case {
  Fields headers;
  bool store;
  int64_t ttl_ms = 0;            // when storing
  std::string_view reason = "";  // part of the reason, when not storing
  int status = 200;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
};

std::string describe(const Case& c) {
  std::string out = std::to_string(c.status);
  for (const auto& [name, value] : c.headers) {
    out += " [" + std::string(name) + ": " + std::string(value) + "]";
  }
  if (c.framing == BodyFraming::ContentLength) {
    out += " length=" + std::to_string(c.content_length);
  } else if (c.framing == BodyFraming::Chunked) {
    out += " chunked";
  }
  return out;
}

ResponseHead make_head(const Case& c) {
  ResponseHead head;
  head.status = c.status;
  head.reason = std::string(reason_phrase(c.status));
  for (const auto& [name, value] : c.headers) {
    head.headers.add(std::string(name), std::string(value));
  }
  head.framing = c.framing;
  head.content_length = c.content_length;
  head.length_announced = c.framing == BodyFraming::ContentLength;
  return head;
}

template <size_t N>
void run(const Case (&cases)[N], const RouteConfig* route, Duration ttl,
         const Config::Cache& cache) {
  for (const Case& c : cases) {
    const std::string response = describe(c);
    CAPTURE(response);
    const StoreDecision decision = decide_storage(make_head(c), route, ttl, cache);
    CAPTURE(decision.reason);
    REQUIRE(decision.store == c.store);
    if (c.store) {
      CHECK(decision.ttl.count() == c.ttl_ms);
      CHECK(decision.reason.empty());
    } else {
      CHECK(decision.reason.find(c.reason) != std::string_view::npos);
      CHECK_FALSE(decision.reason.empty());
    }
  }
}

TEST_CASE("decide_storage: only statuses in cache.statuses") {
  const RouteConfig route;
  {
    const Config::Cache cache;  // statuses: [200]
    const Case cases[] = {
        {{}, true, 60'000},
        {{}, false, 0, "status", 201},
        {{}, false, 0, "status", 203},
        {{}, false, 0, "status", 204},
        {{}, false, 0, "status", 206},
        {{}, false, 0, "status", 301},
        {{}, false, 0, "status", 304},
        {{}, false, 0, "status", 404},
        {{}, false, 0, "status", 500},
        {{}, false, 0, "status", 503},
    };
    run(cases, &route, kRouteTtl, cache);
  }
  {
    Config::Cache cache;
    cache.statuses = {200, 301, 404};
    const Case cases[] = {
        {{}, true, 60'000, "", 200},   {{}, true, 60'000, "", 301},   {{}, true, 60'000, "", 404},
        {{}, false, 0, "status", 302}, {{}, false, 0, "status", 410}, {{}, false, 0, "status", 500},
    };
    run(cases, &route, kRouteTtl, cache);
  }
  {
    Config::Cache cache;
    cache.statuses = {404};
    const Case cases[] = {
        {{}, false, 0, "status", 200},
        {{}, true, 60'000, "", 404},
    };
    run(cases, &route, kRouteTtl, cache);
  }
}

TEST_CASE("decide_storage: what is never shared") {
  const RouteConfig route;
  const Config::Cache cache;
  const Case cases[] = {
      {{{"Content-Type", "application/json"}, {"ETag", "\"x\""}}, true, 60'000},
      // Set-Cookie, however it is spelt.
      {{{"Set-Cookie", "session=1"}}, false, 0, "Set-Cookie"},
      {{{"set-cookie", "session=1"}}, false, 0, "Set-Cookie"},
      {{{"SET-COOKIE", ""}}, false, 0, "Set-Cookie"},
      {{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}},
       false,
       0,
       "Set-Cookie"},
      {{{"Set-Cookie2", "a=1"}}, true, 60'000},
      // Cache-Control no-store and private, case-insensitive, among other directives, on any
      // of several lines.
      {{{"Cache-Control", "no-store"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "private"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "No-Store"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "PRIVATE"}}, false, 0, "no-store or private"},
      {{{"cache-control", "no-store"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "public, max-age=60, no-store"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "max-age=60,private"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "  private  ,  max-age=60"}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "private=\"Set-Cookie\""}}, false, 0, "no-store or private"},
      {{{"Cache-Control", "public"}, {"Cache-Control", "no-store"}},
       false,
       0,
       "no-store or private"},
      {{{"Cache-Control", "max-age=60"}, {"cache-control", "Private"}},
       false,
       0,
       "no-store or private"},
      // Directives that only look alike.
      {{{"Cache-Control", "no-storex, privately, x-private"}}, true, 60'000},
      {{{"Cache-Control", "public, max-age=60"}}, true, 60'000},
      {{{"Cache-Control", ""}}, true, 60'000},
      {{{"Cache-Control", ",,,"}}, true, 60'000},
      // With several reasons, the status is reported.
      {{{"Cache-Control", "no-store"}}, false, 0, "status", 500},
  };
  run(cases, &route, kRouteTtl, cache);
}

TEST_CASE("decide_storage: Vary") {
  const RouteConfig route;
  const Config::Cache cache;
  const Case cases[] = {
      // Accept-Encoding on an identity body: every client can read it.
      {{{"Vary", "Accept-Encoding"}}, true, 60'000},
      {{{"Vary", "accept-encoding"}}, true, 60'000},
      {{{"vary", " Accept-Encoding "}}, true, 60'000},
      {{{"Vary", "Accept-Encoding"}, {"Content-Encoding", "identity"}}, true, 60'000},
      {{{"Vary", "Accept-Encoding, Accept-Encoding"}}, true, 60'000},
      {{{"Vary", "Accept-Encoding"}, {"Vary", "Accept-Encoding"}}, true, 60'000},
      // ... but not on an encoded body, which a client may not be able to read.
      {{{"Vary", "Accept-Encoding"}, {"Content-Encoding", "gzip"}}, false, 0, "Vary"},
      {{{"Content-Encoding", "br"}, {"Vary", "Accept-Encoding"}}, false, 0, "Vary"},
      // Anything else the key does not cover.
      {{{"Vary", "Cookie"}}, false, 0, "Vary"},
      {{{"Vary", "*"}}, false, 0, "Vary"},
      {{{"Vary", "Accept-Language"}}, false, 0, "Vary"},
      {{{"Vary", "Accept-Encoding, Cookie"}}, false, 0, "Vary"},
      {{{"Vary", "Cookie,Accept-Encoding"}}, false, 0, "Vary"},
      {{{"Vary", "Accept-Encoding"}, {"Vary", "Authorization"}}, false, 0, "Vary"},
      // No Vary: one representation for everyone, encoded or not.
      {{{"Content-Encoding", "gzip"}}, true, 60'000},
  };
  run(cases, &route, kRouteTtl, cache);
}

TEST_CASE("decide_storage: cache.max_object_size") {
  const RouteConfig route;
  Config::Cache cache;
  cache.max_object_size = 100;
  const Case cases[] = {
      {{}, true, 60'000, "", 200, BodyFraming::ContentLength, 0},
      {{}, true, 60'000, "", 200, BodyFraming::ContentLength, 99},
      {{}, true, 60'000, "", 200, BodyFraming::ContentLength, 100},
      {{}, false, 0, "max_object_size", 200, BodyFraming::ContentLength, 101},
      {{}, false, 0, "max_object_size", 200, BodyFraming::ContentLength, 1ull << 40},
      // Without a length the size is only known while the body is read.
      {{}, true, 60'000, "", 200, BodyFraming::Chunked, 0},
      {{}, true, 60'000, "", 200, BodyFraming::UntilClose, 0},
  };
  run(cases, &route, kRouteTtl, cache);
}

TEST_CASE("decide_storage: format body cannot keep a Content-Encoding") {
  const Config::Cache cache;
  RouteConfig body_route;
  body_route.format = StoredFormat::Body;
  const Case body_cases[] = {
      {{{"Content-Type", "application/json"}}, true, 60'000},
      {{{"Content-Encoding", "gzip"}}, false, 0, "format: body"},
      {{{"content-encoding", "identity"}}, false, 0, "format: body"},
  };
  run(body_cases, &body_route, kRouteTtl, cache);

  const RouteConfig envelope_route;
  const Case envelope_cases[] = {
      {{{"Content-Encoding", "gzip"}}, true, 60'000},
  };
  run(envelope_cases, &envelope_route, kRouteTtl, cache);
  // cache.default has no route; it stores envelopes.
  run(envelope_cases, nullptr, kRouteTtl, cache);
}

TEST_CASE("decide_storage: without respect_cache_control the route's TTL stands") {
  const RouteConfig route;
  const Config::Cache cache;  // respect_cache_control: false
  const Case cases[] = {
      {{{"Cache-Control", "no-cache"}}, true, 60'000},
      {{{"Cache-Control", "max-age=0"}}, true, 60'000},
      {{{"Cache-Control", "max-age=10"}}, true, 60'000},
      {{{"Cache-Control", "s-maxage=5, max-age=10"}}, true, 60'000},
      {{{"Cache-Control", "max-age=abc"}}, true, 60'000},
      // no-store and private still forbid storing.
      {{{"Cache-Control", "max-age=10, no-store"}}, false, 0, "no-store"},
  };
  run(cases, &route, kRouteTtl, cache);
}

TEST_CASE("decide_storage: respect_cache_control lowers the TTL or forbids storing") {
  const RouteConfig route;
  Config::Cache cache;
  cache.respect_cache_control = true;
  const Case cases[] = {
      {{}, true, 60'000},
      {{{"Cache-Control", "public"}}, true, 60'000},
      // no-cache: a shared cache must revalidate every time, which cachecar does not do.
      {{{"Cache-Control", "no-cache"}}, false, 0, "no-cache"},
      {{{"Cache-Control", "No-Cache"}}, false, 0, "no-cache"},
      {{{"Cache-Control", "public, no-cache, max-age=30"}}, false, 0, "no-cache"},
      {{{"Cache-Control", "max-age=30"}, {"Cache-Control", "no-cache"}}, false, 0, "no-cache"},
      // max-age lowers the TTL, never raises it.
      {{{"Cache-Control", "max-age=10"}}, true, 10'000},
      {{{"Cache-Control", "MAX-AGE=10"}}, true, 10'000},
      {{{"Cache-Control", "max-age=1"}}, true, 1'000},
      {{{"Cache-Control", "max-age=59"}}, true, 59'000},
      {{{"Cache-Control", "max-age=60"}}, true, 60'000},
      {{{"Cache-Control", "max-age=61"}}, true, 60'000},
      {{{"Cache-Control", "max-age=31536000"}}, true, 60'000},
      {{{"Cache-Control", "public, max-age=10"}}, true, 10'000},
      {{{"Cache-Control", "public"}, {"Cache-Control", "max-age=10"}}, true, 10'000},
      // s-maxage is the shared cache's own and beats max-age, either way round.
      {{{"Cache-Control", "s-maxage=5, max-age=30"}}, true, 5'000},
      {{{"Cache-Control", "max-age=30, s-maxage=5"}}, true, 5'000},
      {{{"Cache-Control", "s-maxage=30, max-age=5"}}, true, 30'000},
      {{{"Cache-Control", "max-age=5"}, {"Cache-Control", "s-maxage=30"}}, true, 30'000},
      {{{"Cache-Control", "s-maxage=120, max-age=5"}}, true, 60'000},
      {{{"Cache-Control", "S-MaxAge=7"}}, true, 7'000},
      // max-age=0 (or s-maxage=0) is stale at once.
      {{{"Cache-Control", "max-age=0"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "s-maxage=0, max-age=60"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "s-maxage=60, max-age=0"}}, true, 60'000},
      {{{"Cache-Control", "s-maxage=10, max-age=0"}}, true, 10'000},
      // Quoted values are read; spaces around the directive are ignored.
      {{{"Cache-Control", "max-age=\"10\""}}, true, 10'000},
      {{{"Cache-Control", "s-maxage=\"7\", max-age=30"}}, true, 7'000},
      {{{"Cache-Control", "  max-age=10  "}}, true, 10'000},
      // An invalid value means stale (RFC 9111 §1.2.2): 0, not stored.
      {{{"Cache-Control", "max-age=abc"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=-5"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age="}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=10s"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=1.5"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=+10"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=\"10"}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "max-age=\""}}, false, 0, "max-age=0"},
      {{{"Cache-Control", "s-maxage=x, max-age=30"}}, false, 0, "max-age=0"},
      // no-store and private still win.
      {{{"Cache-Control", "max-age=10, private"}}, false, 0, "no-store or private"},
  };
  run(cases, &route, kRouteTtl, cache);
}

// RFC 9111 §1.2.2: a delta-seconds too large to represent, or a calculation with it that
// overflows, is taken as 2^31 or the largest value the cache can represent, so such a
// response is stored for the route's TTL: a very long lifetime, never a negative one.
TEST_CASE("decide_storage: very large max-age values keep the route's TTL") {
  const RouteConfig route;
  Config::Cache cache;
  cache.respect_cache_control = true;
  const Case cases[] = {
      {{{"Cache-Control", "max-age=2147483648"}}, true, 60'000},
      {{{"Cache-Control", "max-age=100000000000000000"}}, true, 60'000},
      {{{"Cache-Control", "max-age=9223372036854775807"}}, true, 60'000},
      {{{"Cache-Control", "s-maxage=9223372036854775807"}}, true, 60'000},
      {{{"Cache-Control", "max-age=99999999999999999999"}}, true, 60'000},
  };
  run(cases, &route, kRouteTtl, cache);
}

TEST_CASE("decide_storage: cache.default's TTL is lowered the same way") {
  Config::Cache cache;
  cache.respect_cache_control = true;
  const Case cases[] = {
      {{}, true, 30'000},
      {{{"Cache-Control", "max-age=10"}}, true, 10'000},
      {{{"Cache-Control", "max-age=60"}}, true, 30'000},
      {{{"Cache-Control", "s-maxage=45"}}, true, 30'000},
  };
  run(cases, nullptr, Duration(30'000), cache);
}

}  // namespace
}  // namespace cachecar
