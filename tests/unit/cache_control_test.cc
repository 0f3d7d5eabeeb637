#include "cache/cache_control.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "unit_support.h"

namespace cachecar {
namespace {

ResponseCacheControl response(std::string value) {
  return parse_response_cache_control(headers_of({{"Cache-Control", std::move(value)}}));
}

TEST_CASE("parse_response_cache_control: each directive, as RFC 9111 §5.2.2 names it") {
  struct Case {
    std::string value;
    ResponseCacheControl expected;
  };
  auto with = [](auto set) {
    ResponseCacheControl control;
    set(control);
    return control;
  };
  const Case cases[] = {
      {"", {}},
      {"no-store", with([](auto& c) { c.no_store = true; })},
      {"NO-STORE", with([](auto& c) { c.no_store = true; })},
      {"no-cache", with([](auto& c) { c.no_cache = true; })},
      {"no-cache=\"Set-Cookie, X-Foo\"", with([](auto& c) { c.no_cache = true; })},
      {"private", with([](auto& c) { c.is_private = true; })},
      {"private=\"Set-Cookie\", max-age=5", with([](auto& c) {
         c.is_private = true;
         c.max_age = 5;
       })},
      {"public, s-maxage=60, max-age=10", with([](auto& c) {
         c.is_public = true;
         c.s_maxage = 60;
         c.max_age = 10;
       })},
      {"must-revalidate, proxy-revalidate, must-understand, no-transform", with([](auto& c) {
         c.must_revalidate = true;
         c.proxy_revalidate = true;
         c.must_understand = true;
         c.no_transform = true;
       })},
      {"max-age=\"30\"", with([](auto& c) { c.max_age = 30; })},
      {" max-age = 30 ", with([](auto& c) { c.max_age = 30; })},
      // The first value counts (§4.2.1); a malformed one means stale.
      {"max-age=30, max-age=60", with([](auto& c) { c.max_age = 30; })},
      {"max-age=abc", with([](auto& c) { c.max_age = 0; })},
      {"max-age=-1", with([](auto& c) { c.max_age = 0; })},
      {"max-age", with([](auto& c) { c.max_age = 0; })},
      {"s-maxage=1.5", with([](auto& c) { c.s_maxage = 0; })},
      // Too large to represent: 2^31 (§1.2.2).
      {"max-age=99999999999999999999", with([](auto& c) { c.max_age = kDeltaSecondsCap; })},
      {"max-age=4294967296", with([](auto& c) { c.max_age = kDeltaSecondsCap; })},
      {"stale-while-revalidate=30, stale-if-error=600", with([](auto& c) {
         c.stale_while_revalidate = 30;
         c.stale_if_error = 600;
       })},
      // RFC 5861's windows without a number are ignored, not zero.
      {"stale-while-revalidate=soon", {}},
      {",,, ,max-age=3,,", with([](auto& c) { c.max_age = 3; })},
      {"unknown-directive=\"x, y\", max-age=4", with([](auto& c) { c.max_age = 4; })},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const ResponseCacheControl got = response(c.value);
    CHECK(got.no_store == c.expected.no_store);
    CHECK(got.no_cache == c.expected.no_cache);
    CHECK(got.is_private == c.expected.is_private);
    CHECK(got.is_public == c.expected.is_public);
    CHECK(got.must_revalidate == c.expected.must_revalidate);
    CHECK(got.proxy_revalidate == c.expected.proxy_revalidate);
    CHECK(got.must_understand == c.expected.must_understand);
    CHECK(got.no_transform == c.expected.no_transform);
    CHECK(got.max_age == c.expected.max_age);
    CHECK(got.s_maxage == c.expected.s_maxage);
    CHECK(got.stale_while_revalidate == c.expected.stale_while_revalidate);
    CHECK(got.stale_if_error == c.expected.stale_if_error);
  }
}

TEST_CASE("parse_response_cache_control: repeated field lines are one list") {
  const auto control = parse_response_cache_control(
      headers_of({{"Cache-Control", "public"}, {"cache-control", "max-age=7, max-age=9"}}));
  CHECK(control.is_public);
  CHECK(control.max_age == 7);
}

TEST_CASE("parse_request_cache_control: the request directives of §5.2.1") {
  struct Case {
    std::string value;
    RequestCacheControl expected;
  };
  auto with = [](auto set) {
    RequestCacheControl control;
    set(control);
    return control;
  };
  const Case cases[] = {
      {"", {}},
      {"no-cache", with([](auto& c) { c.no_cache = true; })},
      {"no-store, only-if-cached, no-transform", with([](auto& c) {
         c.no_store = true;
         c.only_if_cached = true;
         c.no_transform = true;
       })},
      {"max-age=0", with([](auto& c) { c.max_age = 0; })},
      {"max-age=x", with([](auto& c) { c.max_age = 0; })},
      {"min-fresh=20", with([](auto& c) { c.min_fresh = 20; })},
      {"min-fresh=x", {}},
      {"max-stale", with([](auto& c) { c.max_stale_any = true; })},
      {"max-stale=30", with([](auto& c) { c.max_stale = 30; })},
      {"MAX-STALE=\"30\"", with([](auto& c) { c.max_stale = 30; })},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const RequestCacheControl got =
        parse_request_cache_control(headers_of({{"Cache-Control", c.value}}));
    CHECK(got.no_cache == c.expected.no_cache);
    CHECK(got.no_store == c.expected.no_store);
    CHECK(got.only_if_cached == c.expected.only_if_cached);
    CHECK(got.no_transform == c.expected.no_transform);
    CHECK(got.max_age == c.expected.max_age);
    CHECK(got.min_fresh == c.expected.min_fresh);
    CHECK(got.max_stale == c.expected.max_stale);
    CHECK(got.max_stale_any == c.expected.max_stale_any);
  }
}

TEST_CASE("effective_response_cache_control: a targeted field replaces Cache-Control (RFC 9213)") {
  struct Case {
    std::string name;
    Headers headers;
    std::string_view governing;
    std::optional<int64_t> max_age;
    bool no_store;
  };
  const Case cases[] = {
      {"Cache-Control alone", headers_of({{"Cache-Control", "max-age=10"}}), "Cache-Control", 10,
       false},
      {"CDN-Cache-Control wins whole",
       headers_of({{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=600"}}),
       "CDN-Cache-Control", 600, false},
      {"cachecar's own field is the most specific",
       headers_of({{"CDN-Cache-Control", "max-age=600"},
                   {"Cachecar-Cache-Control", "max-age=5"},
                   {"Cache-Control", "max-age=1"}}),
       "Cachecar-Cache-Control", 5, false},
      {"a targeted no-store",
       headers_of({{"Cache-Control", "max-age=60"}, {"cdn-cache-control", "no-store"}}),
       "CDN-Cache-Control", std::nullopt, true},
      {"targeted lines are one Dictionary",
       headers_of({{"CDN-Cache-Control", "max-age=600"}, {"CDN-Cache-Control", "no-store"}}),
       "CDN-Cache-Control", 600, true},
      // RFC 9213 §2.1: a targeted field that is no valid Dictionary is ignored whole.
      {"invalid: a member that is no key",
       headers_of({{"CDN-Cache-Control", "max-age=10000, &&&&&"}, {"Cache-Control", "no-store"}}),
       "Cache-Control", std::nullopt, true},
      {"invalid: space after =",
       headers_of({{"CDN-Cache-Control", "max-age= 60"}, {"Cache-Control", "max-age=5"}}),
       "Cache-Control", 5, false},
      {"invalid: keys are lower case",
       headers_of({{"CDN-Cache-Control", "MAX-AGE=60"}, {"Cache-Control", "max-age=5"}}),
       "Cache-Control", 5, false},
      {"invalid: a trailing comma",
       headers_of({{"CDN-Cache-Control", "max-age=60,"}, {"Cache-Control", "max-age=5"}}),
       "Cache-Control", 5, false},
      {"empty: ignored", headers_of({{"CDN-Cache-Control", ""}, {"Cache-Control", "max-age=5"}}),
       "Cache-Control", 5, false},
      {"an invalid cachecar field falls back to CDN-Cache-Control",
       headers_of({{"Cachecar-Cache-Control", "max-age=\"5"}, {"CDN-Cache-Control", "max-age=60"}}),
       "CDN-Cache-Control", 60, false},
      // A directive of the wrong type is not taken, and the field still governs.
      {"wrong type: a String max-age",
       headers_of({{"CDN-Cache-Control", "max-age=\"10000\""}, {"Cache-Control", "no-store"}}),
       "CDN-Cache-Control", std::nullopt, false},
      {"wrong type: a Decimal max-age",
       headers_of({{"CDN-Cache-Control", "max-age=1.5"}, {"Cache-Control", "max-age=5"}}),
       "CDN-Cache-Control", std::nullopt, false},
      {"a false flag is no flag", headers_of({{"CDN-Cache-Control", "no-store=?0, max-age=9"}}),
       "CDN-Cache-Control", 9, false},
      {"a key seen twice keeps its last value",
       headers_of({{"CDN-Cache-Control", "max-age=9, max-age=90"}}), "CDN-Cache-Control", 90,
       false},
      {"a directive unknown here, with parameters, is valid",
       headers_of({{"CDN-Cache-Control", "none;x=1, max-age=9"}, {"Cache-Control", "no-store"}}),
       "CDN-Cache-Control", 9, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(iequals(governing_cache_control_field(c.headers), c.governing));
    const auto control = effective_response_cache_control(c.headers);
    CHECK(control.max_age == c.max_age);
    CHECK(control.no_store == c.no_store);
  }
}

}  // namespace
}  // namespace cachecar
