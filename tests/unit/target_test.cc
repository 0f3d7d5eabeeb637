// http/target.h: one canonical target for the cache key and the upstream.

#include "http/target.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>

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
      // A fragment is no part of a request target: dropped, wherever it starts.
      {"/mine#user=0123", "/mine"},
      {"/search?q=a#user=0123", "/search?q=a"},
      {"/search?q=a#b#c", "/search?q=a"},
      {"/a/../b#x", "/b"},
      {"/#", "/"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    std::string reason;
    const auto normalized = normalize_target(c.target, reason);
    REQUIRE_MESSAGE(normalized.has_value(), reason);
    CHECK(*normalized == c.expected);
    // Normalising twice changes nothing.
    CHECK(normalize_target(*normalized, reason) == normalized);
    // The shortcut says "as it is" exactly when normalising leaves the target alone; a path
    // with an escape always takes the full pass.
    const auto path_has_escape = [](std::string_view target) {
      return target.substr(0, target.find('?')).find('%') != std::string_view::npos;
    };
    if (path_has_escape(c.target)) {
      CHECK_FALSE(is_canonical_target(c.target));
    } else {
      CHECK(is_canonical_target(c.target) == (*normalized == c.target));
    }
    CHECK(is_canonical_target(*normalized) == !path_has_escape(*normalized));
  }
}

TEST_CASE("is_canonical_target: what it leaves to normalize_target") {
  CHECK(is_canonical_target("/"));
  CHECK(is_canonical_target("/products/42"));
  CHECK(is_canonical_target("/products/42?next=//x/./y&p=%41"));  // the query is not a path
  CHECK(is_canonical_target("/a.b/c.d"));
  CHECK_FALSE(is_canonical_target(""));
  CHECK_FALSE(is_canonical_target("products/42"));
  CHECK_FALSE(is_canonical_target("*"));
  CHECK_FALSE(is_canonical_target("//a"));
  CHECK_FALSE(is_canonical_target("/a//b"));
  CHECK_FALSE(is_canonical_target("/a/./b"));
  CHECK_FALSE(is_canonical_target("/a/.hidden"));  // slow path, which keeps it as it is
  CHECK_FALSE(is_canonical_target("/a/.."));
  CHECK_FALSE(is_canonical_target("/a%41"));
  CHECK_FALSE(is_canonical_target(std::string_view("/a\0b", 4)));
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
