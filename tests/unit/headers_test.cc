// http/headers.h: hop-by-hop fields (RFC 9110 §7.6.1) and the forwarding fields an
// intermediary adds (X-Forwarded-*, Via §7.6.3).

#include "http/headers.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Headers make(const Fields& fields) {
  Headers headers;
  for (const auto& [name, value] : fields) {
    headers.add(name, value);
  }
  return headers;
}

// One "Name: value" line per field, in order, so a failure shows the whole list.
std::string dump(const Headers& headers) {
  std::string out;
  for (const Header& h : headers.list()) {
    out += h.name + ": " + h.value + "\n";
  }
  return out;
}

std::string dump(const Fields& fields) { return dump(make(fields)); }

TEST_CASE("remove_hop_by_hop removes framing, connection-scoped and Connection-named fields") {
  struct Case {
    std::string_view name;
    Fields input;
    Fields expected;
  };
  const Case cases[] = {
      {"end-to-end fields pass in order",
       {{"Host", "a"},
        {"Accept", "*/*"},
        {"Cache-Control", "no-cache"},
        {"Expect", "100-continue"},
        {"Authorization", "Bearer x"}},
       {{"Host", "a"},
        {"Accept", "*/*"},
        {"Cache-Control", "no-cache"},
        {"Expect", "100-continue"},
        {"Authorization", "Bearer x"}}},
      {"Connection itself", {{"Host", "a"}, {"Connection", "close"}}, {{"Host", "a"}}},
      {"fields named by Connection, case-insensitively",
       {{"Connection", "X-Foo, x-bar"}, {"x-foo", "1"}, {"X-BAR", "2"}, {"X-Baz", "3"}},
       {{"X-Baz", "3"}}},
      {"fields named by several Connection lines",
       {{"Connection", "x-a"}, {"X-A", "1"}, {"connection", "X-B"}, {"X-B", "2"}, {"X-C", "3"}},
       {{"X-C", "3"}}},
      {"empty and padded Connection tokens",
       {{"Connection", " , ,\tx-a ,,"}, {"X-A", "1"}, {"X-B", "2"}},
       {{"X-B", "2"}}},
      {"Connection naming an end-to-end field",
       {{"Connection", "Cache-Control"}, {"Cache-Control", "max-age=0"}, {"Accept", "*/*"}},
       {{"Accept", "*/*"}}},
      {"the fixed hop-by-hop set",
       {{"Keep-Alive", "timeout=5"},
        {"TE", "trailers"},
        {"Trailer", "X-Checksum"},
        {"Transfer-Encoding", "chunked"},
        {"Upgrade", "websocket"},
        {"Content-Length", "5"},
        {"Content-Type", "text/plain"}},
       {{"Content-Type", "text/plain"}}},
      {"the fixed set in any case",
       {{"keep-alive", "timeout=5"},
        {"te", "trailers"},
        {"TRAILER", "X"},
        {"transfer-encoding", "chunked"},
        {"UPGRADE", "h2c"},
        {"content-length", "5"},
        {"CONNECTION", "keep-alive"},
        {"Date", "today"}},
       {{"Date", "today"}}},
      {"Proxy-* fields",
       {{"Proxy-Authorization", "Basic x"},
        {"proxy-connection", "keep-alive"},
        {"PROXY-AUTHENTICATE", "Basic"},
        {"Proxy", "kept: no dash"},
        {"X-Proxy-Id", "kept: not a prefix"}},
       {{"Proxy", "kept: no dash"}, {"X-Proxy-Id", "kept: not a prefix"}}},
      {"repeated framing fields all go",
       {{"Content-Length", "5"},
        {"Content-Length", "6"},
        {"Transfer-Encoding", "gzip"},
        {"Transfer-Encoding", "chunked"},
        {"X", "1"}},
       {{"X", "1"}}},
      {"names are matched whole, not by prefix",
       {{"Connection", "x-a"}, {"X-A-B", "1"}, {"X-", "2"}, {"Content-Lengthy", "3"}},
       {{"X-A-B", "1"}, {"X-", "2"}, {"Content-Lengthy", "3"}}},
      {"nothing to do", {}, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Headers headers = make(c.input);
    remove_hop_by_hop(headers);
    CHECK(dump(headers) == dump(c.expected));
  }
}

TEST_CASE("has_token finds a token in comma-separated field values") {
  struct Case {
    Fields fields;
    std::string_view name;
    std::string_view token;
    bool expected;
  };
  const Case cases[] = {
      {{{"Connection", "close"}}, "Connection", "close", true},
      {{{"Connection", "Close"}}, "Connection", "close", true},
      {{{"Connection", "close"}}, "Connection", "CLOSE", true},
      {{{"connection", "close"}}, "Connection", "close", true},
      {{{"Connection", "keep-alive, Upgrade"}}, "Connection", "upgrade", true},
      {{{"Connection", "keep-alive,Upgrade"}}, "Connection", "keep-alive", true},
      {{{"Connection", " \tclose\t "}}, "Connection", "close", true},
      {{{"Connection", "a"}, {"Connection", "b, close"}}, "Connection", "close", true},
      {{{"Connection", "closed"}}, "Connection", "close", false},
      {{{"Connection", "x-close"}}, "Connection", "close", false},
      {{{"Connection", "clo se"}}, "Connection", "close", false},
      {{{"Connection", ""}}, "Connection", "close", false},
      {{{"Connection", ", ,"}}, "Connection", "close", false},
      {{{"X-Connection", "close"}}, "Connection", "close", false},
      {{}, "Connection", "close", false},
      {{{"Connection", "close"}}, "Upgrade", "close", false},
  };
  for (const Case& c : cases) {
    CAPTURE(dump(c.fields));
    CAPTURE(c.name);
    CAPTURE(c.token);
    CHECK(has_token(make(c.fields), c.name, c.token) == c.expected);
  }
}

TEST_CASE("prepare_upstream_request_headers") {
  struct Case {
    std::string_view name;
    Fields input;
    std::string_view client;
    Fields expected;
  };
  const Case cases[] = {
      {"forwarding fields added, Host kept",
       {{"Host", "shop.example"}, {"Accept", "*/*"}},
       "10.0.0.1",
       {{"Host", "shop.example"},
        {"Accept", "*/*"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "shop.example"},
        {"Via", "1.1 cachecar"}}},
      {"X-Forwarded-For appended to the client's",
       {{"Host", "a"}, {"X-Forwarded-For", "203.0.113.7"}},
       "10.0.0.1",
       {{"Host", "a"},
        {"X-Forwarded-For", "203.0.113.7, 10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "a"},
        {"Via", "1.1 cachecar"}}},
      {"several X-Forwarded-For lines joined into one, in order",
       {{"x-forwarded-for", "203.0.113.7"},
        {"Host", "a"},
        {"X-Forwarded-For", "198.51.100.1, 192.0.2.9"}},
       "::1",
       {{"Host", "a"},
        {"X-Forwarded-For", "203.0.113.7, 198.51.100.1, 192.0.2.9, ::1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "a"},
        {"Via", "1.1 cachecar"}}},
      {"client-sent X-Forwarded-Proto and X-Forwarded-Host replaced",
       {{"X-Forwarded-Proto", "https"},
        {"Host", "a"},
        {"x-forwarded-host", "evil.example"},
        {"X-Forwarded-Host", "evil2.example"}},
       "10.0.0.1",
       {{"Host", "a"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "a"},
        {"Via", "1.1 cachecar"}}},
      {"no Host: a client-sent X-Forwarded-Host is dropped, not trusted",
       {{"X-Forwarded-Host", "evil.example"}},
       "10.0.0.1",
       {{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-Proto", "http"}, {"Via", "1.1 cachecar"}}},
      {"Via appended to the client's Via lines",
       {{"Host", "a"}, {"Via", "1.0 fred, 1.1 p.example"}, {"via", "1.1 q.example"}},
       "10.0.0.1",
       {{"Host", "a"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "a"},
        {"Via", "1.0 fred, 1.1 p.example, 1.1 q.example, 1.1 cachecar"}}},
      {"Expect and hop-by-hop fields removed",
       {{"Host", "a"},
        {"Expect", "100-continue"},
        {"Connection", "keep-alive, X-Hop"},
        {"X-Hop", "1"},
        {"Keep-Alive", "timeout=5"},
        {"TE", "trailers"},
        {"Transfer-Encoding", "chunked"},
        {"Content-Length", "5"},
        {"Proxy-Authorization", "Basic x"},
        {"Upgrade", "websocket"},
        {"Content-Type", "application/json"}},
       "10.0.0.1",
       {{"Host", "a"},
        {"Content-Type", "application/json"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "a"},
        {"Via", "1.1 cachecar"}}},
      {"Host with a port kept verbatim",
       {{"host", "shop.example:8080"}},
       "10.0.0.1",
       {{"host", "shop.example:8080"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"X-Forwarded-Proto", "http"},
        {"X-Forwarded-Host", "shop.example:8080"},
        {"Via", "1.1 cachecar"}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Headers headers = make(c.input);
    prepare_upstream_request_headers(headers, ForwardingInfo{c.client, "http"});
    CHECK(dump(headers) == dump(c.expected));
    CHECK(headers.count("X-Forwarded-For") == 1);
    CHECK(headers.count("Via") == 1);
  }
}

TEST_CASE("remove_rate_limit_fields removes RateLimit fields only") {
  Headers headers = make({{"RateLimit-Limit", "10"},
                          {"ratelimit-remaining", "3"},
                          {"RateLimit-Policy", "10;w=1"},
                          {"RateLimit", "limit=10"},
                          {"Retry-After", "1"},
                          {"X-RateLimit-Remaining", "3"},
                          {"Content-Type", "text/plain"}});
  remove_rate_limit_fields(headers);
  CHECK(
      dump(headers) ==
      dump({{"Retry-After", "1"}, {"X-RateLimit-Remaining", "3"}, {"Content-Type", "text/plain"}}));
}

TEST_CASE("prepare_client_response_headers") {
  struct Case {
    std::string_view name;
    Fields input;
    Fields expected;
  };
  const Case cases[] = {
      {"framing and connection fields removed, Via added",
       {{"Content-Type", "text/plain"},
        {"Content-Length", "5"},
        {"Transfer-Encoding", "chunked"},
        {"Connection", "keep-alive"},
        {"Keep-Alive", "timeout=5"}},
       {{"Content-Type", "text/plain"}, {"Via", "1.1 cachecar"}}},
      {"Via appended to the upstream's",
       {{"Via", "1.1 origin"}, {"ETag", "\"x\""}},
       {{"ETag", "\"x\""}, {"Via", "1.1 origin, 1.1 cachecar"}}},
      {"fields named by Connection removed",
       {{"Connection", "X-Internal"}, {"X-Internal", "secret"}, {"Cache-Control", "max-age=60"}},
       {{"Cache-Control", "max-age=60"}, {"Via", "1.1 cachecar"}}},
      {"repeated end-to-end fields kept in order",
       {{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"Proxy-Authenticate", "Basic"}},
       {{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"Via", "1.1 cachecar"}}},
      {"empty", {}, {{"Via", "1.1 cachecar"}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Headers headers = make(c.input);
    prepare_client_response_headers(headers);
    CHECK(dump(headers) == dump(c.expected));
  }
}

}  // namespace
}  // namespace cachecar
