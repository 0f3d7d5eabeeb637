// http/message.h: the value types the parsers fill and the writers read.

#include "http/message.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

TEST_CASE("iequals compares ASCII case-insensitively") {
  struct Case {
    std::string_view a;
    std::string_view b;
    bool expected;
  };
  const Case cases[] = {
      {"", "", true},
      {"Host", "host", true},
      {"CONTENT-LENGTH", "content-length", true},
      {"X-A_1", "x-a_1", true},
      {"Host", "Hos", false},
      {"Host", "Hosts", false},
      {"a", "b", false},
      // Only A-Z fold: '@' (0x40) and '`' (0x60), '[' (0x5b) and '{' (0x7b) stay distinct.
      {"@", "`", false},
      {"[", "{", false},
      {"\xc3\x84", "\xc3\xa4", false},  // no Unicode folding
  };
  for (const Case& c : cases) {
    CAPTURE(c.a);
    CAPTURE(c.b);
    CHECK(iequals(c.a, c.b) == c.expected);
    CHECK(iequals(c.b, c.a) == c.expected);
  }
}

TEST_CASE("Headers get, count, remove and set are case-insensitive and keep order") {
  Headers headers;
  headers.add("Host", "a");
  headers.add("Set-Cookie", "x=1");
  headers.add("set-cookie", "y=2");
  headers.add("Accept", "*/*");

  CHECK(headers.size() == 4);
  CHECK(headers.get("HOST") == std::optional<std::string_view>("a"));
  CHECK(headers.get("SET-COOKIE") == std::optional<std::string_view>("x=1"));
  CHECK_FALSE(headers.get("Missing").has_value());
  CHECK(headers.contains("accept"));
  CHECK(headers.count("Set-Cookie") == 2);
  CHECK(headers.count("Missing") == 0);

  std::vector<std::string> cookies;
  headers.for_each("SET-cookie", [&](std::string_view v) { cookies.emplace_back(v); });
  CHECK(cookies == std::vector<std::string>{"x=1", "y=2"});

  headers.set("set-COOKIE", "z=3");
  CHECK(headers.count("Set-Cookie") == 1);
  REQUIRE(headers.size() == 3);
  CHECK(headers.list()[0].name == "Host");
  CHECK(headers.list()[1].name == "Accept");
  CHECK(headers.list()[2].name == "set-COOKIE");
  CHECK(headers.list()[2].value == "z=3");

  CHECK(headers.remove("host") == 1);
  CHECK(headers.remove("host") == 0);
  CHECK(headers.size() == 2);
  CHECK_FALSE(headers.empty());
}

TEST_CASE("RequestHead::path and query split the target at the first '?'") {
  struct Case {
    std::string_view target;
    std::string_view path;
    std::string_view query;
  };
  const Case cases[] = {
      {"/", "/", ""},
      {"/products/42", "/products/42", ""},
      {"/products/42?", "/products/42", ""},
      {"/products/42?x=1", "/products/42", "x=1"},
      {"/p?a=1?b=2", "/p", "a=1?b=2"},
      {"/p#frag", "/p#frag", ""},
      {"?x", "", "x"},
      {"", "", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    RequestHead head;
    head.target = std::string(c.target);
    CHECK(head.path() == c.path);
    CHECK(head.query() == c.query);
  }
}

TEST_CASE("HttpVersion::at_least_1_1") {
  struct Case {
    int major;
    int minor;
    bool expected;
  };
  const Case cases[] = {{0, 9, false}, {1, 0, false}, {1, 1, true}, {1, 2, true}, {2, 0, true}};
  for (const Case& c : cases) {
    CAPTURE(c.major);
    CAPTURE(c.minor);
    CHECK(HttpVersion{c.major, c.minor}.at_least_1_1() == c.expected);
  }
}

TEST_CASE("is_idempotent_method follows RFC 9110 §9.2.2") {
  struct Case {
    std::string_view method;
    bool expected;
  };
  const Case cases[] = {
      {"GET", true},      {"HEAD", true},  {"PUT", true},   {"DELETE", true},
      {"OPTIONS", true},  {"TRACE", true}, {"POST", false}, {"PATCH", false},
      {"CONNECT", false}, {"get", false},  {"", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.method);
    CHECK(is_idempotent_method(c.method) == c.expected);
  }
}

TEST_CASE("reason_phrase") {
  struct Case {
    int status;
    std::string_view reason;
  };
  const Case cases[] = {
      {100, "Continue"},          {200, "OK"},
      {204, "No Content"},        {304, "Not Modified"},
      {400, "Bad Request"},       {405, "Method Not Allowed"},
      {408, "Request Timeout"},   {413, "Content Too Large"},
      {414, "URI Too Long"},      {417, "Expectation Failed"},
      {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
      {502, "Bad Gateway"},       {503, "Service Unavailable"},
      {504, "Gateway Timeout"},   {505, "HTTP Version Not Supported"},
      {299, "Unknown"},           {0, "Unknown"},
      {999, "Unknown"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.status);
    CHECK(reason_phrase(c.status) == c.reason);
  }
}

}  // namespace
}  // namespace cachecar
