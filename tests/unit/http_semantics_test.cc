// cache/http_semantics.h: RFC 9111 on a response about to be stored and on a stored one about
// to be served, in cache.mode: http.

#include "cache/http_semantics.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "unit_support.h"

namespace cachecar {
namespace {

// Sun, 06 Nov 1994 08:49:37 GMT.
constexpr int64_t kDate = 784111777;
constexpr std::string_view kDateText = "Sun, 06 Nov 1994 08:49:37 GMT";

Config::Cache http_cache() {
  Config::Cache cache;
  cache.mode = CacheMode::Http;
  cache.heuristic_max = Duration(3600 * 1000);
  cache.max_ttl = Duration(24 * 3600 * 1000);
  cache.revalidate_window = Duration(0);
  return cache;
}

ResponseHead response_of(int status, std::vector<std::pair<std::string, std::string>> fields) {
  ResponseHead head;
  head.status = status;
  for (auto& [name, value] : fields) {
    head.headers.add(std::move(name), std::move(value));
  }
  head.framing = BodyFraming::ContentLength;
  head.content_length = 10;
  return head;
}

TEST_CASE("decide_http_storage: what a shared cache stores, and for how long in Redis") {
  struct Case {
    std::string name;
    ResponseHead response;
    Headers request;
    bool store;
    int64_t ttl_seconds;  // when stored
    int64_t initial_age;  // when stored
  };
  const std::string date(kDateText);
  const Headers plain;
  const Headers authorized = headers_of({{"Authorization", "Bearer x"}});
  const std::vector<Case> cases = {
      {"max-age", response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60"}}), plain,
       true, 60, 0},
      {"s-maxage wins over max-age",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60, s-maxage=5"}}), plain,
       true, 5, 0},
      {"Expires minus Date",
       response_of(200, {{"Date", date}, {"Expires", "Sun, 06 Nov 1994 08:50:37 GMT"}}), plain,
       true, 60, 0},
      {"the Age it arrived with is taken off its freshness",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60"}, {"Age", "20"}}), plain,
       true, 40, 20},
      {"heuristic: 10% since Last-Modified",
       response_of(200, {{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}),
       plain, true, 360, 0},
      {"heuristic capped by heuristic_max",
       response_of(200, {{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1993 08:49:37 GMT"}}),
       plain, true, 3600, 0},
      {"no lifetime, no validator", response_of(200, {{"Date", date}}), plain, false, 0, 0},
      {"a 302 without explicit freshness",
       response_of(302, {{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}),
       plain, false, 0, 0},
      {"a 404 with max-age", response_of(404, {{"Date", date}, {"Cache-Control", "max-age=9"}}),
       plain, true, 9, 0},
      {"a 500 with max-age", response_of(500, {{"Date", date}, {"Cache-Control", "max-age=9"}}),
       plain, true, 9, 0},
      {"a 204 with max-age: stored, it is a final answer",
       response_of(204, {{"Date", date}, {"Cache-Control", "max-age=30"}}), plain, true, 30, 0},
      {"a 204 by heuristic",
       response_of(204, {{"Date", date}, {"Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT"}}),
       plain, true, 360, 0},
      {"206 is never stored whole",
       response_of(206, {{"Date", date}, {"Cache-Control", "max-age=60"}}), plain, false, 0, 0},
      {"no-store", response_of(200, {{"Cache-Control", "max-age=60, no-store"}}), plain, false,
       0, 0},
      {"no-store overridden by must-understand on a status understood",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60, no-store, must-understand"}}),
       plain, true, 60, 0},
      {"must-understand on a status not understood",
       response_of(299, {{"Cache-Control", "max-age=60, must-understand"}}), plain, false, 0, 0},
      {"private", response_of(200, {{"Cache-Control", "private, max-age=60"}}), plain, false, 0,
       0},
      {"request no-store",
       response_of(200, {{"Cache-Control", "max-age=60"}}),
       headers_of({{"Cache-Control", "no-store"}}), false, 0, 0},
      {"Authorization without permission", response_of(200, {{"Cache-Control", "max-age=60"}}),
       authorized, false, 0, 0},
      {"Authorization with public",
       response_of(200, {{"Date", date}, {"Cache-Control", "public, max-age=60"}}), authorized,
       true, 60, 0},
      {"Authorization with s-maxage",
       response_of(200, {{"Date", date}, {"Cache-Control", "s-maxage=60"}}), authorized, true,
       60, 0},
      {"Set-Cookie", response_of(200, {{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}}),
       plain, false, 0, 0},
      {"Vary: *", response_of(200, {{"Cache-Control", "max-age=60"}, {"Vary", "*"}}), plain,
       false, 0, 0},
      {"Vary on a request field: stored as a variant",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60"},
                         {"Vary", "Accept-Language"}}),
       plain, true, 60, 0},
      {"Vary naming something that is not a field name",
       response_of(200, {{"Cache-Control", "max-age=60"}, {"Vary", "Accept Language"}}), plain,
       false, 0, 0},
      {"Vary: Accept-Encoding on an identity body",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=60"},
                         {"Vary", "Accept-Encoding"}}),
       plain, true, 60, 0},
      {"a targeted field replaces Cache-Control",
       response_of(200, {{"Date", date}, {"Cache-Control", "no-store"},
                         {"CDN-Cache-Control", "max-age=30"}}),
       plain, true, 30, 0},
      {"stale on arrival without a validator",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=10"}, {"Age", "30"}}), plain,
       false, 0, 0},
      {"stale-while-revalidate keeps it longer",
       response_of(200, {{"Date", date},
                         {"Cache-Control", "max-age=10, stale-while-revalidate=50"}}),
       plain, true, 60, 0},
      {"stale-if-error keeps it longer",
       response_of(200, {{"Date", date}, {"Cache-Control", "max-age=10, stale-if-error=90"}}),
       plain, true, 100, 0},
  };
  const Config::Cache cache = http_cache();
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const HttpStoreDecision decision =
        decide_http_storage(c.response, c.request, cache, kDate, kDate);
    CHECK(decision.store == c.store);
    if (decision.store && c.store) {
      CHECK(decision.ttl == Duration(c.ttl_seconds * 1000));
      CHECK(decision.initial_age == c.initial_age);
      CHECK(decision.reason.empty());
    }
    if (!decision.store) {
      CHECK_FALSE(decision.reason.empty());
    }
  }
}

TEST_CASE("decide_http_storage: windows of cache.* and the max_ttl bound") {
  Config::Cache cache = http_cache();
  const std::string date(kDateText);
  SUBCASE("a validator is kept for revalidate_window past its freshness") {
    cache.revalidate_window = Duration(600 * 1000);
    const auto decision = decide_http_storage(
        response_of(200, {{"Date", date}, {"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}}),
        {}, cache, kDate, kDate);
    CHECK(decision.store);
    CHECK(decision.ttl == Duration(600 * 1000));
  }
  SUBCASE("an ETag alone on a 200 is stored to be revalidated") {
    cache.revalidate_window = Duration(60 * 1000);
    const auto decision =
        decide_http_storage(response_of(200, {{"ETag", "\"v1\""}}), {}, cache, kDate, kDate);
    CHECK(decision.store);
    CHECK(decision.ttl == Duration(60 * 1000));
  }
  SUBCASE("cache.stale_if_error applies to a response that names no window") {
    cache.stale_if_error = Duration(120 * 1000);
    const auto decision = decide_http_storage(
        response_of(200, {{"Date", date}, {"Cache-Control", "max-age=10"}}), {}, cache, kDate,
        kDate);
    CHECK(decision.ttl == Duration(130 * 1000));
  }
  SUBCASE("never longer than max_ttl") {
    cache.max_ttl = Duration(30 * 1000);
    const auto decision = decide_http_storage(
        response_of(200, {{"Date", date}, {"Cache-Control", "max-age=31536000"}}), {}, cache,
        kDate, kDate);
    CHECK(decision.ttl == Duration(30 * 1000));
  }
  SUBCASE("larger than max_object_size") {
    cache.max_object_size = 5;
    CHECK_FALSE(decide_http_storage(response_of(200, {{"Cache-Control", "max-age=10"}}), {}, cache,
                                    kDate, kDate)
                    .store);
  }
  SUBCASE("time spent waiting for the response counts as age") {
    const auto decision = decide_http_storage(
        response_of(200, {{"Date", date}, {"Cache-Control", "max-age=10"}}), {}, cache, kDate - 3,
        kDate);
    CHECK(decision.initial_age == 3);
    CHECK(decision.ttl == Duration(7 * 1000));
  }
}

CachedView stored_view(const std::string& lines, int64_t stored_at) {
  CachedView view;
  view.status = 200;
  view.head_lines = lines;
  view.body = "0123456789";
  view.stored_at_ms = stored_at * 1000;
  return view;
}

TEST_CASE("judge_stored: fresh, stale, and what the request asks for") {
  const Config::Cache cache = http_cache();
  const std::string lines = "Date: " + std::string(kDateText) +
                            "\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n";
  const CachedView entry = stored_view(lines, kDate);
  struct Case {
    std::string name;
    int64_t now;
    Headers request;
    HttpVerdict::Kind kind;
    bool asked_by_request;
  };
  const std::vector<Case> cases = {
      {"fresh", kDate + 10, {}, HttpVerdict::Kind::Fresh, false},
      {"stale", kDate + 61, {}, HttpVerdict::Kind::MustValidate, false},
      {"max-stale accepts it", kDate + 61, headers_of({{"Cache-Control", "max-stale=5"}}),
       HttpVerdict::Kind::StaleAllowed, false},
      {"request no-cache", kDate + 10, headers_of({{"Cache-Control", "no-cache"}}),
       HttpVerdict::Kind::MustValidate, true},
      {"request max-age=0", kDate + 10, headers_of({{"Cache-Control", "max-age=0"}}),
       HttpVerdict::Kind::MustValidate, true},
      {"request max-age larger than its age", kDate + 10,
       headers_of({{"Cache-Control", "max-age=20"}}), HttpVerdict::Kind::Fresh, false},
      {"min-fresh beyond what is left", kDate + 10, headers_of({{"Cache-Control", "min-fresh=55"}}),
       HttpVerdict::Kind::MustValidate, true},
      {"Pragma is not Cache-Control", kDate + 10, headers_of({{"Pragma", "no-cache"}}),
       HttpVerdict::Kind::Fresh, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const HttpVerdict verdict = judge_stored(entry, c.request, c.now, cache);
    CHECK(verdict.kind == c.kind);
    CHECK(verdict.asked_by_request == c.asked_by_request);
    CHECK(verdict.age == c.now - kDate);
    CHECK(verdict.fresh_for == 60 - (c.now - kDate));
    CHECK(verdict.validator);
  }
  SUBCASE("no-cache on the response: always validated") {
    const std::string no_cache = "Cache-Control: no-cache, max-age=60\r\n";
    const HttpVerdict verdict = judge_stored(stored_view(no_cache, kDate), {}, kDate + 1, cache);
    CHECK(verdict.kind == HttpVerdict::Kind::MustValidate);
    CHECK_FALSE(verdict.asked_by_request);
    CHECK_FALSE(verdict.validator);
  }
  SUBCASE("stale-while-revalidate: served while refreshed, unless the request asks for more") {
    const std::string swr = "Cache-Control: max-age=10, stale-while-revalidate=30\r\n";
    const CachedView stale = stored_view(swr, kDate);
    CHECK(judge_stored(stale, {}, kDate + 20, cache).kind ==
          HttpVerdict::Kind::WhileRevalidating);
    CHECK(judge_stored(stale, {}, kDate + 41, cache).kind == HttpVerdict::Kind::MustValidate);
    CHECK(judge_stored(stale, {}, kDate + 5, cache).kind == HttpVerdict::Kind::Fresh);
    for (const char* asked : {"no-cache", "max-age=5", "min-fresh=1"}) {
      CAPTURE(asked);
      CHECK(judge_stored(stale, headers_of({{"Cache-Control", asked}}), kDate + 20, cache).kind ==
            HttpVerdict::Kind::MustValidate);
    }
    const std::string must = swr + "Cache-Control: must-revalidate\r\n";
    CHECK(judge_stored(stored_view(must, kDate), {}, kDate + 20, cache).kind ==
          HttpVerdict::Kind::MustValidate);
  }
  SUBCASE("a soft purge ends freshness then; stale windows count from the purge") {
    const std::string swr = "Cache-Control: max-age=600, stale-while-revalidate=30\r\n";
    CachedView purged = stored_view(swr, kDate);
    purged.stale_since_ms = (kDate + 100) * 1000 + 999;
    // The mark has Redis's time: ahead of this clock, it is stale from now, never fresh.
    const HttpVerdict ahead = judge_stored(purged, {}, kDate + 99, cache);
    CHECK(ahead.kind == HttpVerdict::Kind::WhileRevalidating);
    CHECK(ahead.fresh_for == 0);
    const HttpVerdict at_purge = judge_stored(purged, {}, kDate + 100, cache);
    CHECK(at_purge.kind == HttpVerdict::Kind::WhileRevalidating);
    CHECK(at_purge.fresh_for == 0);
    CHECK(judge_stored(purged, {}, kDate + 130, cache).kind ==
          HttpVerdict::Kind::WhileRevalidating);
    CHECK(judge_stored(purged, {}, kDate + 131, cache).kind == HttpVerdict::Kind::MustValidate);
    // Without stale-while-revalidate it is revalidated; a client's max-stale may still take it.
    const std::string validated = "Cache-Control: max-age=600\r\nETag: \"v1\"\r\n";
    CachedView plain = stored_view(validated, kDate);
    plain.stale_since_ms = kDate * 1000;
    const HttpVerdict verdict = judge_stored(plain, {}, kDate + 1, cache);
    CHECK(verdict.kind == HttpVerdict::Kind::MustValidate);
    CHECK(verdict.validator);
    CHECK(judge_stored(plain, headers_of({{"Cache-Control", "max-stale=5"}}), kDate + 1, cache)
              .kind == HttpVerdict::Kind::StaleAllowed);
    // A purge never lengthens freshness: one after the entry went stale changes nothing.
    const std::string short_lived = "Cache-Control: max-age=10\r\n";
    CachedView late = stored_view(short_lived, kDate);
    late.stale_since_ms = (kDate + 500) * 1000;
    CHECK(judge_stored(late, {}, kDate + 20, cache).fresh_for == -10);
  }
  SUBCASE("must-revalidate refuses max-stale") {
    const std::string must = "Cache-Control: max-age=1, must-revalidate\r\n";
    const HttpVerdict verdict = judge_stored(
        stored_view(must, kDate), headers_of({{"Cache-Control", "max-stale"}}), kDate + 5, cache);
    CHECK(verdict.kind == HttpVerdict::Kind::MustValidate);
  }
}

TEST_CASE("client_has_current: If-None-Match (weak), else If-Modified-Since") {
  const Headers stored = headers_of(
      {{"ETag", "W/\"v1\""}, {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  struct Case {
    std::string name;
    Headers request;
    bool has_it;
  };
  const std::vector<Case> cases = {
      {"same tag", headers_of({{"If-None-Match", "\"v1\""}}), true},
      {"weak and strong compare weakly", headers_of({{"If-None-Match", "W/\"v1\""}}), true},
      {"one of a list", headers_of({{"If-None-Match", "\"v0\", \"v1\""}}), true},
      {"across field lines",
       headers_of({{"If-None-Match", "\"v0\""}, {"If-None-Match", "\"v1\""}}), true},
      {"star", headers_of({{"If-None-Match", "*"}}), true},
      {"another tag", headers_of({{"If-None-Match", "\"v2\""}}), false},
      {"If-None-Match wins over If-Modified-Since",
       headers_of({{"If-None-Match", "\"v2\""},
                   {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
       false},
      {"not modified since", headers_of({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
       true},
      {"modified since", headers_of({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}}),
       false},
      {"an invalid date", headers_of({{"If-Modified-Since", "yesterday"}}), false},
      {"no condition", {}, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(client_has_current(stored, c.request) == c.has_it);
  }
  CHECK_FALSE(client_has_current({}, headers_of({{"If-None-Match", "\"v1\""}})));
  // RFC 9111 §4.3.2: without a Last-Modified, the stored Date stands in for it.
  const Headers dated = headers_of({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  CHECK(client_has_current(dated, headers_of({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}})));
  CHECK_FALSE(
      client_has_current(dated, headers_of({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}})));
  CHECK_FALSE(client_has_current({}, headers_of({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}})));
}

TEST_CASE("not_modified_lines keeps the validators and caching fields, not the body's") {
  const std::string lines =
      "Content-Type: text/plain\r\nETag: \"v1\"\r\nCache-Control: max-age=5\r\nX-App: 1\r\n"
      "Date: x\r\nVary: Accept-Encoding\r\nContent-Language: en\r\n";
  CHECK(not_modified_lines(lines) ==
        "ETag: \"v1\"\r\nCache-Control: max-age=5\r\nDate: x\r\nVary: Accept-Encoding\r\n");
}

TEST_CASE("add_validators asks about the stored ETag and Last-Modified only") {
  Headers request = headers_of({{"If-None-Match", "\"client\""},
                                {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"},
                                {"Accept", "*/*"}});
  add_validators(headers_of({{"ETag", "\"v1\""}}), request);
  CHECK(request.get("If-None-Match") == "\"v1\"");
  CHECK_FALSE(request.contains("If-Modified-Since"));
  CHECK(request.get("Accept") == "*/*");
  Headers second;
  add_validators(headers_of({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}), second);
  CHECK(second.get("If-Modified-Since") == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK_FALSE(second.contains("If-None-Match"));
}

TEST_CASE("refreshed_head_lines: a 304 updates what it names, never the body's fields") {
  const std::string stored =
      "Content-Type: text/plain\r\nCache-Control: max-age=5\r\nX-Multi: a\r\nX-Multi: b\r\n"
      "Content-Encoding: gzip\r\nETag: \"v1\"\r\n";
  const Headers not_modified =
      headers_of({{"Cache-Control", "max-age=50"},
                  {"X-Multi", "c"},
                  {"Content-Length", "0"},
                  {"Content-Encoding", "identity"},
                  {"Set-Cookie", "a=b"},
                  {"X-New", "1"}});
  CHECK(refreshed_head_lines(stored, not_modified) ==
        "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nETag: \"v1\"\r\n"
        "Cache-Control: max-age=50\r\nX-Multi: c\r\nX-New: 1\r\n");
}

TEST_CASE("parse_head_lines reads stored lines back") {
  const Headers headers = parse_head_lines("A: 1\r\nB:  two words \r\nC:\r\n");
  REQUIRE(headers.size() == 3);
  CHECK(headers.get("A") == "1");
  CHECK(headers.get("B") == "two words");
  CHECK(headers.get("C") == "");
  CHECK(parse_head_lines("").empty());
}

}  // namespace
}  // namespace cachecar
