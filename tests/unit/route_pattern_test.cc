// config/route_pattern.h: path patterns and the Redis key templates filled from them.

#include "config/route_pattern.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

RoutePattern compile_or_fail(std::string_view text) {
  std::string reason;
  auto pattern = RoutePattern::compile(text, reason);
  if (!pattern) {
    FAIL("pattern ", std::string(text), " rejected: ", reason);
  }
  return std::move(*pattern);
}

Pairs to_pairs(const Captures& captures) {
  Pairs out;
  for (const auto& [name, value] : captures) {
    out.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

std::string to_text(const Pairs& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    out += "{" + name + "=" + value + "}";
  }
  return out;
}

TEST_CASE("RoutePattern::compile accepts literals, variables and a final rest variable") {
  const std::string_view patterns[] = {
      "/",
      "/products",
      "/products/",
      "/products/{id}",
      "/a/{x}/b/{y}",
      "/files/{path*}",
      "/{rest*}",
      "/a//b",
      "/v1/{Snake_Case_9}",
      "/a:b/c.d/~e",
  };
  for (std::string_view text : patterns) {
    CAPTURE(text);
    std::string reason;
    const auto pattern = RoutePattern::compile(text, reason);
    CAPTURE(reason);
    REQUIRE(pattern.has_value());
    CHECK(pattern->text() == text);
  }
}

TEST_CASE("RoutePattern::compile rejects malformed patterns with a reason") {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"", "must start with '/'"},
      {"products", "must start with '/'"},
      {"products/{id}", "must start with '/'"},
      {"/products/{}", "invalid variable name ''"},
      {"/products/{*}", "invalid variable name ''"},
      {"/products/{id", "must fill its whole segment"},
      {"/products/id}", "must fill its whole segment"},
      {"/products/x{id}", "must fill its whole segment"},
      {"/products/{id}x", "must fill its whole segment"},
      {"/products/{a}{b}", "invalid variable name 'a}{b'"},
      {"/{", "must fill its whole segment"},
      {"/}", "must fill its whole segment"},
      {"/{a-b}", "invalid variable name 'a-b'"},
      {"/{ id }", "invalid variable name ' id '"},
      {"/{{id}}", "invalid variable name '{id}'"},
      {"/{a.b}", "invalid variable name 'a.b'"},
      {"/a/{id}/{id}", "variable {id} appears twice"},
      {"/a/{id}/{id*}", "variable {id} appears twice"},
      {"/{rest*}/x", "{rest*} may only be the last segment"},
      {"/{rest*}/", "{rest*} may only be the last segment"},
      {"/{a**}", "invalid variable name 'a*'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(RoutePattern::compile(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("RoutePattern::match") {
  struct Case {
    std::string_view pattern;
    std::string_view path;
    bool matches;
    Pairs captures;
  };
  const Case cases[] = {
      // literal
      {"/", "/", true, {}},
      {"/", "/x", false, {}},
      {"/", "", false, {}},
      {"/products", "/products", true, {}},
      {"/products", "/product", false, {}},
      {"/products", "/productsx", false, {}},
      {"/products", "/Products", false, {}},
      {"/products", "products", false, {}},
      {"/products", "", false, {}},
      {"/products", "/products/x", false, {}},
      {"/a//b", "/a//b", true, {}},
      {"/a//b", "/a/b", false, {}},
      // variables
      {"/products/{id}", "/products/42", true, {{"id", "42"}}},
      {"/products/{id}", "/products/a%2Fb", true, {{"id", "a%2Fb"}}},
      {"/products/{id}", "/products/a:b;c", true, {{"id", "a:b;c"}}},
      {"/products/{id}", "/products", false, {}},
      {"/products/{id}", "/other/42", false, {}},
      {"/a/{x}/b/{y}", "/a/1/b/2", true, {{"x", "1"}, {"y", "2"}}},
      {"/a/{x}/b/{y}", "/a/1/c/2", false, {}},
      {"/{x}/{y}", "/1/2", true, {{"x", "1"}, {"y", "2"}}},
      // trailing slash: part of the path, never ignored
      {"/products/{id}", "/products/42/", false, {}},
      {"/products/", "/products/", true, {}},
      {"/products/", "/products", false, {}},
      // empty segments: a variable never matches empty text
      {"/products/{id}", "/products/", false, {}},
      {"/a/{x}/b", "/a//b", false, {}},
      {"/{x}", "/", false, {}},
      // {rest*}: the remainder, slashes included, never empty
      {"/files/{path*}", "/files/a", true, {{"path", "a"}}},
      {"/files/{path*}", "/files/a/b/c.txt", true, {{"path", "a/b/c.txt"}}},
      {"/files/{path*}", "/files/a/", true, {{"path", "a/"}}},
      {"/files/{path*}", "/files//x", true, {{"path", "/x"}}},
      {"/files/{path*}", "/files/", false, {}},
      {"/files/{path*}", "/files", false, {}},
      {"/files/{path*}", "/filesx/a", false, {}},
      {"/{rest*}", "/x/y", true, {{"rest", "x/y"}}},
      {"/{rest*}", "/", false, {}},
      {"/u/{user}/{rest*}", "/u/ann/a/b", true, {{"user", "ann"}, {"rest", "a/b"}}},
      {"/u/{user}/{rest*}", "/u/ann", false, {}},
      {"/u/{user}/{rest*}", "/u//a", false, {}},
      // no match at all
      {"/products/{id}", "/", false, {}},
      {"/products/{id}", "?x", false, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.path);
    const RoutePattern pattern = compile_or_fail(c.pattern);
    // Stale captures from an earlier call must never leak into the result.
    Captures captures{{"stale", "value"}};
    const std::string path(c.path);
    CHECK(pattern.match(path, captures) == c.matches);
    if (c.matches) {
      CHECK(to_text(to_pairs(captures)) == to_text(c.captures));
      for (const auto& capture : captures) {
        // The values are views into the path, not copies.
        CHECK(capture.second.data() >= path.data());
        CHECK(capture.second.data() + capture.second.size() <= path.data() + path.size());
      }
    }
  }
}

TEST_CASE("RoutePattern::has_variable names variables only") {
  const RoutePattern pattern = compile_or_fail("/a/{x}/{rest*}");
  CHECK(pattern.has_variable("x"));
  CHECK(pattern.has_variable("rest"));
  CHECK_FALSE(pattern.has_variable("a"));
  CHECK_FALSE(pattern.has_variable("rest*"));
  CHECK_FALSE(pattern.has_variable("X"));
  CHECK_FALSE(pattern.has_variable(""));
}

TEST_CASE("KeyTemplate::compile rejects bad templates and unknown variables") {
  struct Case {
    std::string_view pattern;
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"/products/{id}", "", "cannot be empty"},
      {"/products/{id}", "product:{sku}", "{sku} is not a variable of path /products/{id}"},
      {"/products/{id}", "product:{ID}", "{ID} is not a variable of path /products/{id}"},
      {"/products/{id}", "product:{products}", "{products} is not a variable"},
      {"/products/{id}", "product:{}", "{} is not a variable"},
      {"/products/{id}", "product:{id", "unterminated '{'"},
      {"/products/{id}", "product:id}", "unmatched '}'"},
      {"/products/{id}", "}{id}", "unmatched '}'"},
      {"/products/{id}", "{id}}", "unmatched '}'"},
      {"/products/{id}", "{a{id}}", "{a{id} is not a variable"},
      {"/files/{path*}", "file:{path*}", "{path*} is not a variable"},
      {"/static", "static:{id}", "{id} is not a variable of path /static"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.text);
    const RoutePattern pattern = compile_or_fail(c.pattern);
    std::string reason;
    CHECK_FALSE(KeyTemplate::compile(c.text, pattern, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("KeyTemplate::render fills variables from the path's captures") {
  struct Case {
    std::string_view pattern;
    std::string_view key;
    std::string_view path;
    std::string_view expected;
  };
  const Case cases[] = {
      {"/products/{id}", "product:{id}", "/products/42", "product:42"},
      {"/products/{id}", "{id}", "/products/42", "42"},
      {"/products/{id}", "static", "/products/42", "static"},
      {"/products/{id}", "p:{id}:{id}", "/products/42", "p:42:42"},
      {"/products/{id}", "{id}:suffix", "/products/a%20b", "a%20b:suffix"},
      {"/u/{user}/files/{path*}", "files:{user}:{path}", "/u/ann/files/a/b", "files:ann:a/b"},
      {"/u/{user}/files/{path*}", "{path}|{user}", "/u/ann/files/x", "x|ann"},
      {"/{a}/{b}/{c}", "{c}{b}{a}", "/1/2/3", "321"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.key);
    CAPTURE(c.path);
    const RoutePattern pattern = compile_or_fail(c.pattern);
    std::string reason;
    const auto key = KeyTemplate::compile(c.key, pattern, reason);
    CAPTURE(reason);
    REQUIRE(key.has_value());
    CHECK(key->text() == c.key);
    Captures captures;
    REQUIRE(pattern.match(c.path, captures));
    std::string out = "prefix|";  // render appends
    key->render(captures, out);
    CHECK(out == "prefix|" + std::string(c.expected));
  }
}

TEST_CASE("captures beyond the inline ones: every variable, in order, across repeated matches") {
  // More variables than Captures keeps inline, so the captures spill to the heap.
  std::string pattern_text;
  std::string path;
  std::string key_text;
  std::string expected;
  const size_t variables = Captures::kInline + 3;
  for (size_t i = 0; i < variables; ++i) {
    pattern_text += "/{v" + std::to_string(i) + "}";
    path += "/x" + std::to_string(i);
    key_text += "{v" + std::to_string(i) + "}.";
    expected += "x" + std::to_string(i) + ".";
  }
  const RoutePattern pattern = compile_or_fail(pattern_text);
  std::string reason;
  const auto key = KeyTemplate::compile(key_text, pattern, reason);
  REQUIRE_MESSAGE(key.has_value(), reason);
  Captures captures;
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    REQUIRE(pattern.match(path, captures));
    CHECK(captures.size() == variables);
    std::string out;
    key->render(captures, out);
    CHECK(out == expected);
  }
  // A short match after a long one: the spilled captures are gone.
  const RoutePattern short_pattern = compile_or_fail("/a/{id}");
  REQUIRE(short_pattern.match("/a/7", captures));
  CHECK(to_pairs(captures) == Pairs{{"id", "7"}});
}

}  // namespace
}  // namespace cachecar
