// http/target.h: one canonical target for the cache key and the upstream.

#include "http/target.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>

namespace cachecar {
namespace {

TEST_CASE("normalize_target: one spelling per resource") {
  struct Case {
    const char* target;
    const char* expected;
  };
  const Case cases[] = {
      {"/", "/"},
      {"/products/42", "/products/42"},
      {"/products/42?x=1&y=%2f", "/products/42?x=1&y=%2f"},  // the query is kept as sent
      {"/products/%34%32", "/products/42"},                  // unreserved escapes decoded
      {"/a%2fb", "/a%2Fb"},                                  // reserved ones kept, upper case
      {"/a%7eb%2D", "/a~b-"},
      {"//products//42", "/products/42"},
      {"/products/./42", "/products/42"},
      {"/products/x/../42", "/products/42"},
      {"/products/%2e%2e/admin", "/admin"},
      {"/a/b/..", "/a/"},
      {"/a/b/.", "/a/b/"},
      {"/a/", "/a/"},
      {"/a/..", "/"},
      {"/products/42;.css", "/products/42;.css"},  // parameters are part of the segment
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    std::string reason;
    const auto normalized = normalize_target(c.target, reason);
    REQUIRE_MESSAGE(normalized.has_value(), reason);
    CHECK(*normalized == c.expected);
    // Normalising twice changes nothing.
    CHECK(normalize_target(*normalized, reason) == normalized);
  }
}

TEST_CASE("normalize_target: refuses what has no safe reading") {
  const char* cases[] = {
      "",
      "products/42",
      "http://example.com/a",
      "*",
      "/..",
      "/a/../..",
      "/%2e%2e/etc",
      "/a%",
      "/a%4",
      "/a%zz",
      "/a%00b",
  };
  for (const char* target : cases) {
    CAPTURE(target);
    std::string reason;
    CHECK_FALSE(normalize_target(target, reason).has_value());
    CHECK_FALSE(reason.empty());
  }
}

}  // namespace
}  // namespace cachecar
