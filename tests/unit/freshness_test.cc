#include "cache/freshness.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "unit_support.h"

namespace cachecar {
namespace {

// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
constexpr int64_t kExample = 784111777;

TEST_CASE("parse_http_date: the three forms of RFC 9110 §5.6.7, and nothing else") {
  struct Case {
    std::string_view text;
    std::optional<int64_t> expected;
  };
  const Case cases[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", kExample},
      {"Sunday, 06-Nov-94 08:49:37 GMT", kExample},
      {"Sun Nov  6 08:49:37 1994", kExample},
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
      {"Tue, 29 Feb 2000 23:59:59 GMT", 951868799},
      {"Sat, 31 Dec 2039 23:59:59 GMT", 2208988799},
      {"Thursday, 01-Jan-70 00:00:00 GMT", 0},
      {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},  // "00" is 2000, not 1900
      {"Wed Dec 31 23:59:60 2014", 1420070400},         // a leap second is a valid time
      // Names in another case still say when (§5.6.7: be robust in parsing timestamps).
      {"SUN, 06 NOV 1994 08:49:37 gmt", kExample},
      {"sunday, 06-nov-94 08:49:37 Gmt", kExample},
      {"sun nov  6 08:49:37 1994", kExample},
      // Not HTTP-dates.
      {"", std::nullopt},
      {"0", std::nullopt},
      {"-1", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},
      {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT ", std::nullopt},
      {"Sun, 06 Nov 94 08:49:37 GMT", std::nullopt},
      {"Sun, 31 Feb 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 29 Feb 1900 08:49:37 GMT", std::nullopt},  // 1900 was no leap year
      {"Sun, 06 Nov 1994 24:00:00 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:60:00 GMT", std::nullopt},
      {"Sun, 06 Foo 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 0x Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, +6 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun Nov 6 08:49:37 1994", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(parse_http_date(c.text) == c.expected);
  }
}

TEST_CASE("freshness_lifetime: s-maxage, max-age, Expires, then a heuristic (RFC 9111 §4.2.1)") {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  const int64_t received = kExample + 5;
  const int64_t heuristic_max = 3600;
  struct Case {
    std::string name;
    int status;
    Headers headers;
    std::optional<int64_t> expected;
  };
  const Case cases[] = {
      {"s-maxage over max-age", 200,
       headers_of({{"Cache-Control", "max-age=10, s-maxage=60"}, {"Expires", date}}), 60},
      {"max-age over Expires", 200,
       headers_of({{"Cache-Control", "max-age=10"},
                   {"Date", date},
                   {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"}}),
       10},
      {"Expires minus Date", 200,
       headers_of({{"Date", date}, {"Expires", "Sun, 06 Nov 1994 08:59:37 GMT"}}), 600},
      {"Expires before Date", 200,
       headers_of({{"Date", date}, {"Expires", "Sun, 06 Nov 1994 07:49:37 GMT"}}), 0},
      {"Expires without Date: from the time received", 200,
       headers_of({{"Expires", "Sun, 06 Nov 1994 08:50:37 GMT"}}), 55},
      {"an Expires centuries ahead is capped at 2^31 s (§1.2.2)", 200,
       headers_of({{"Date", date}, {"Expires", "THU, 09 AUG 6050 02:01:18 gmt"}}),
       kDeltaSecondsCap},
      {"an invalid Expires is in the past (§5.3)", 200,
       headers_of({{"Date", date}, {"Expires", "0"}}), 0},
      {"10% since Last-Modified", 200,
       headers_of({{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}), 360},
      {"the heuristic capped", 200,
       headers_of({{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1984 08:49:37 GMT"}}),
       heuristic_max},
      {"a heuristic for a 404 too", 404,
       headers_of({{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}), 360},
      {"no heuristic for a 302", 302,
       headers_of({{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}),
       std::nullopt},
      {"public allows a heuristic for any status", 302,
       headers_of({{"Cache-Control", "public"},
                   {"Date", date},
                   {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}),
       360},
      {"Last-Modified after Date: no heuristic", 200,
       headers_of({{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 09:49:37 GMT"}}),
       std::nullopt},
      {"nothing to go on", 200, headers_of({{"Date", date}}), std::nullopt},
      {"max-age=0: fresh for no time at all", 200, headers_of({{"Cache-Control", "max-age=0"}}), 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const auto control = effective_response_cache_control(c.headers);
    CHECK(freshness_lifetime(c.status, control, c.headers, received, heuristic_max) == c.expected);
  }
}

TEST_CASE("initial_age and current_age: §4.2.3's corrected_initial_age, then resident time") {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  struct Case {
    std::string name;
    Headers headers;
    int64_t request_time;
    int64_t response_time;
    int64_t expected;
  };
  const Case cases[] = {
      {"fresh from the origin", headers_of({{"Date", date}}), kExample, kExample, 0},
      {"the request's own time counts", headers_of({{"Date", date}}), kExample - 2, kExample, 2},
      {"an Age from a cache before us", headers_of({{"Date", date}, {"Age", "30"}}), kExample - 1,
       kExample, 31},
      {"Date older than Age says: apparent age wins", headers_of({{"Date", date}, {"Age", "3"}}),
       kExample + 100, kExample + 100, 100},
      {"a Date in the future counts as none", headers_of({{"Date", date}}), kExample - 100,
       kExample - 100, 0},
      {"an invalid Age is ignored", headers_of({{"Date", date}, {"Age", "-5"}}), kExample, kExample,
       0},
      {"a huge Age is capped", headers_of({{"Age", "99999999999999999999999"}}), kExample, kExample,
       kDeltaSecondsCap},
      // A list's first member counts, whether in one line or two, and parameters do not.
      {"a list in one line: its first", headers_of({{"Age", "7200, 0"}}), kExample, kExample, 7200},
      {"a list in one line, young first", headers_of({{"Age", "0, 7200"}}), kExample, kExample, 0},
      {"two lines: the first", headers_of({{"Age", "7200"}, {"Age", "0"}}), kExample, kExample,
       7200},
      {"parameters dropped", headers_of({{"Age", "7200;foo=111"}}), kExample, kExample, 7200},
      {"a decimal is no delta-seconds", headers_of({{"Age", "7200.0"}}), kExample, kExample, 0},
      {"nothing before the comma", headers_of({{"Age", ", 7200"}}), kExample, kExample, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const int64_t initial = initial_age(c.headers, c.request_time, c.response_time);
    CHECK(initial == c.expected);
    CHECK(current_age(initial, c.response_time, c.response_time + 40) == c.expected + 40);
    CHECK(current_age(initial, c.response_time, c.response_time - 1) == c.expected);
  }
}

TEST_CASE("servable: freshness and the request's directives (§4.2, §5.2.1)") {
  auto response = [](std::string value) {
    return parse_response_cache_control(headers_of({{"Cache-Control", std::move(value)}}));
  };
  auto request = [](std::string value) {
    return parse_request_cache_control(headers_of({{"Cache-Control", std::move(value)}}));
  };
  struct Case {
    std::string name;
    int64_t lifetime;
    int64_t age;
    std::string response;
    std::string request;
    Servable expected;
  };
  const Case cases[] = {
      {"fresh", 60, 10, "", "", Servable::Fresh},
      {"exactly its lifetime old is stale", 60, 60, "", "", Servable::MustValidate},
      {"stale", 60, 61, "", "", Servable::MustValidate},
      {"request no-cache", 60, 10, "", "no-cache", Servable::MustValidate},
      {"response no-cache", 60, 10, "no-cache", "", Servable::MustValidate},
      {"request max-age below the age", 60, 10, "", "max-age=5", Servable::MustValidate},
      {"request max-age above the age", 60, 10, "", "max-age=20", Servable::Fresh},
      {"request max-age=0", 60, 0, "", "max-age=0", Servable::Fresh},
      {"min-fresh met", 60, 10, "", "min-fresh=50", Servable::Fresh},
      {"min-fresh not met", 60, 10, "", "min-fresh=51", Servable::MustValidate},
      {"max-stale any", 60, 1000, "", "max-stale", Servable::StaleAllowed},
      {"max-stale within", 60, 70, "", "max-stale=10", Servable::StaleAllowed},
      {"max-stale exceeded", 60, 71, "", "max-stale=10", Servable::MustValidate},
      {"must-revalidate wins over max-stale", 60, 70, "must-revalidate", "max-stale",
       Servable::MustValidate},
      {"proxy-revalidate too (a shared cache)", 60, 70, "proxy-revalidate", "max-stale",
       Servable::MustValidate},
      {"s-maxage implies proxy-revalidate", 60, 70, "s-maxage=60", "max-stale",
       Servable::MustValidate},
      {"max-stale has nothing to do with fresh", 60, 10, "must-revalidate", "max-stale",
       Servable::Fresh},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(servable(c.lifetime, c.age, response(c.response), request(c.request)) == c.expected);
  }
}

TEST_CASE("stale-while-revalidate and stale-if-error windows (RFC 5861)") {
  auto response = [](std::string value) {
    return parse_response_cache_control(headers_of({{"Cache-Control", std::move(value)}}));
  };
  const auto swr = response("max-age=60, stale-while-revalidate=30");
  CHECK(may_serve_while_revalidating(60, 70, swr));
  CHECK(may_serve_while_revalidating(60, 90, swr));
  CHECK_FALSE(may_serve_while_revalidating(60, 91, swr));
  CHECK_FALSE(may_serve_while_revalidating(60, 70, response("max-age=60")));
  CHECK_FALSE(may_serve_while_revalidating(
      60, 70, response("max-age=60, stale-while-revalidate=30, must-revalidate")));

  const auto sie = response("max-age=60, stale-if-error=600");
  CHECK(may_serve_on_error(60, 600, sie, std::nullopt));
  CHECK_FALSE(may_serve_on_error(60, 661, sie, std::nullopt));
  // The response's own window wins over the configured one; without one, the configured.
  CHECK_FALSE(may_serve_on_error(60, 661, sie, 3600));
  CHECK(may_serve_on_error(60, 661, response("max-age=60"), 3600));
  CHECK_FALSE(may_serve_on_error(60, 661, response("max-age=60"), std::nullopt));
  CHECK_FALSE(may_serve_on_error(60, 100, response("max-age=60, no-cache"), 3600));
  CHECK_FALSE(may_serve_on_error(60, 100, response("s-maxage=60"), 3600));
}

}  // namespace
}  // namespace cachecar
