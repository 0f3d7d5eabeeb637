// cache/key.h: the cache key of a request, and the invalidation guard derived from it.

#include "cache/key.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "redis/cluster_slots.h"

namespace cachecar {
namespace {

RouteConfig make_route(std::string_view path, std::string_view key,
                       std::vector<std::string> query_params = {}) {
  std::string reason;
  auto pattern = RoutePattern::compile(path, reason);
  REQUIRE_MESSAGE(pattern.has_value(), reason);
  auto key_template = KeyTemplate::compile(key, *pattern, reason);
  REQUIRE_MESSAGE(key_template.has_value(), reason);
  RouteConfig route;
  route.path = std::move(*pattern);
  route.key = std::move(*key_template);
  route.query_params = std::move(query_params);
  return route;
}

// The part of a key that Redis Cluster hashes (the Cluster specification, "Hash tags"): the
// text between the first '{' and the first '}' after it when that text is non-empty, else
// the whole key.
std::string_view hashed_part(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) {
    return key;
  }
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) {
    return key;
  }
  return key.substr(open + 1, close - open - 1);
}

TEST_CASE("route_cache_key fills the template from the captures") {
  struct Case {
    std::string_view pattern;
    std::string_view key;
    std::string_view prefix;
    std::string_view path;
    std::string_view expected;
  };
  const Case cases[] = {
      {"/products/{id}", "product:{id}", "", "/products/42", "product:42"},
      {"/products/{id}", "product:{id}", "cc:", "/products/42", "cc:product:42"},
      {"/products/{id}", "{id}", "", "/products/42", "42"},
      {"/products/{id}", "{id}:{id}", "", "/products/42", "42:42"},
      {"/products", "products:list", "", "/products", "products:list"},
      {"/products", "products:list", "app/v2:", "/products", "app/v2:products:list"},
      {"/a/{x}/b/{y}", "pair:{y}:{x}", "", "/a/1/b/2", "pair:2:1"},
      {"/files/{path*}", "file:{path}", "", "/files/a/b/c.txt", "file:a/b/c.txt"},
      // Bytes of the path are copied as they are: the key is a binary-safe bulk string.
      {"/products/{id}", "product:{id}", "", "/products/%20x", "product:%20x"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.key);
    CAPTURE(c.prefix);
    CAPTURE(c.path);
    const RouteConfig route = make_route(c.pattern, c.key);
    Captures captures;
    REQUIRE(route.path.match(c.path, captures));
    CHECK(route_cache_key(c.prefix, route, captures, "") == c.expected);
    // Without query_params the query is ignored.
    CHECK(route_cache_key(c.prefix, route, captures, "a=1&b=2") == c.expected);
  }
}

TEST_CASE("route_cache_key keys on the route's query_params, in the route's order") {
  struct Case {
    std::vector<std::string> params;
    std::string_view query;
    std::string_view expected;
  };
  const Case cases[] = {
      {{"page"}, "", "products:list"},
      {{"page"}, "page=2", "{products:list}?page=2"},
      {{"page"}, "sort=asc&page=2", "{products:list}?page=2"},
      {{"page"}, "page=2&sort=asc", "{products:list}?page=2"},
      // Absent parameters are left out.
      {{"page"}, "sort=asc", "products:list"},
      {{"page", "sort"}, "sort=asc", "{products:list}?sort=asc"},
      // The route's order, not the request's, so both spellings share one entry.
      {{"page", "sort"}, "sort=asc&page=2", "{products:list}?page=2&sort=asc"},
      {{"page", "sort"}, "page=2&sort=asc", "{products:list}?page=2&sort=asc"},
      {{"sort", "page"}, "page=2&sort=asc", "{products:list}?sort=asc&page=2"},
      // The first occurrence of a repeated parameter.
      {{"page"}, "page=2&page=3", "{products:list}?page=2"},
      {{"page", "sort"}, "sort=a&page=1&sort=b&page=9", "{products:list}?page=1&sort=a"},
      // A parameter without '=' is kept as written.
      {{"page"}, "page", "{products:list}?page"},
      {{"page", "sort"}, "page&sort=asc", "{products:list}?page&sort=asc"},
      {{"page"}, "page=", "{products:list}?page="},
      // Names match exactly: no prefix, suffix or case folding.
      {{"page"}, "pages=2&xpage=3&Page=4", "products:list"},
      {{"page"}, "pagex=1&page=5", "{products:list}?page=5"},
      // Values are copied as they are.
      {{"q"}, "q=a%26b", "{products:list}?q=a%26b"},
      {{"q"}, "q=a=b", "{products:list}?q=a=b"},
      // Empty pieces between '&' are skipped.
      {{"page"}, "&&page=2&", "{products:list}?page=2"},
      {{"page"}, "&", "products:list"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.query);
    CAPTURE(c.expected);
    const RouteConfig route = make_route("/products", "products:list", c.params);
    Captures captures;
    REQUIRE(route.path.match("/products", captures));
    CHECK(route_cache_key("", route, captures, c.query) == c.expected);
  }
}

TEST_CASE("route_cache_key puts the prefix before the key and the query after it") {
  const RouteConfig route = make_route("/products/{id}", "product:{id}", {"v"});
  Captures captures;
  REQUIRE(route.path.match("/products/7", captures));
  CHECK(route_cache_key("cc:", route, captures, "v=3") == "{cc:product:7}?v=3");
}

TEST_CASE("default_cache_key") {
  struct Case {
    std::string_view prefix;
    std::string_view path;
    std::string_view query;
    std::string_view expected;
  };
  const Case cases[] = {
      {"", "/", "", "path:/"},
      {"", "/about", "", "path:/about"},
      {"", "/about", "x=1", "{path:/about}?x=1"},
      // The whole query, in the request's order.
      {"", "/search", "q=a&page=2&q=b", "{path:/search}?q=a&page=2&q=b"},
      {"cc:", "/about", "", "cc:path:/about"},
      {"cc:", "/about", "x=1&y", "{cc:path:/about}?x=1&y"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.prefix);
    CAPTURE(c.path);
    CAPTURE(c.query);
    CHECK(default_cache_key(c.prefix, c.path, c.query) == c.expected);
  }
}

TEST_CASE("guard_key_for adds a hash tag unless the key already has one") {
  struct Case {
    std::string_view prefix;
    std::string_view key;
    std::string_view expected;
  };
  const Case cases[] = {
      {"", "product:42", "gen:{product:42}"},
      {"cc:", "product:42", "cc:gen:{product:42}"},
      {"cc:", "cc:product:42", "cc:gen:{cc:product:42}"},
      {"", "path:/about?x=1", "gen:{path:/about?x=1}"},
      // A valid hash tag is kept, so the guard hashes on the same text.
      {"", "a{t}b", "gen:a{t}b"},
      {"", "{t}", "gen:{t}"},
      {"", "{user:1}:cart", "gen:{user:1}:cart"},
      {"cc:", "a{t}b", "cc:gen:a{t}b"},
      {"", "x{a}{b}", "gen:x{a}{b}"},
      // A '{' with no '}' after it is no hash tag.
      {"", "a{b", "gen:{a{b}"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.prefix);
    CAPTURE(c.key);
    CHECK(guard_key_for(c.prefix, c.key) == c.expected);
  }
}

TEST_CASE("variants_key_for shares the key's slot, as its guard does") {
  CHECK(variants_key_for("", "search") == "variants:{search}");
  CHECK(variants_key_for("cc:", "cc:products:list") == "cc:variants:{cc:products:list}");
  // A key with its own hash tag keeps it.
  CHECK(variants_key_for("{t}:", "{t}:search") == "{t}:variants:{t}:search");
}

TEST_CASE("guard_key_for does not keep empty braces as a hash tag") {
  // "{}" is no hash tag to Redis Cluster: "gen:{}" would hash as the whole string, away from
  // the key's slot.
  CHECK(guard_key_for("", "{}") != "gen:{}");
  CHECK(guard_key_for("", "a{}b") != "gen:a{}b");
}

// The contract in key.h: the guard is in the key's own slot, so the fill script that reads
// both stays single-slot. Keys carry request bytes (captured path segments, query values),
// which may hold braces: the key functions escape them, so a client can neither choose a
// key's slot nor separate a guard from its key.
TEST_CASE("keys built from request bytes keep their guard in their slot") {
  const std::string_view request_texts[] = {
      "42", "a{t}b", "{t}",   "x{a}{b}", "a{b",  "a{b{c}d", "{\"a\":1}",
      "{}", "a{}b",  "{}{t}", "a}b",     "}{t}", "q=}",
  };
  std::string reason;
  auto pattern = RoutePattern::compile("/p/{id}", reason);
  REQUIRE(pattern);
  auto key_template = KeyTemplate::compile("p:{id}", *pattern, reason);
  REQUIRE(key_template);
  for (std::string_view prefix : {"", "cc:", "{tenant}:"}) {
    CAPTURE(prefix);
    for (std::string_view text : request_texts) {
      CAPTURE(text);
      const Captures captures{{"id", text}};
      const std::string key = template_key(prefix, *key_template, captures);
      CAPTURE(key);
      // No brace from the request survives: only the prefix's tag can pick a slot.
      CHECK(key.find_first_of("{}", prefix.size()) == std::string::npos);
      const std::string guard = guard_key_for(prefix, key);
      CAPTURE(guard);
      CHECK(guard.rfind(std::string(prefix) + "gen:", 0) == 0);
      CHECK(hashed_part(guard) == hashed_part(key));
      // Query variants, of a route's key and of cache.default's: in their base key's slot (so
      // in its guard's), and the request's braces escaped after the tag cachecar chose.
      const std::string default_key = default_cache_key(prefix, "/p", {});
      const std::pair<std::string, std::string> variants[] = {
          {key, query_variant_key(key, text)},
          {default_key, default_cache_key(prefix, "/p", text)},
      };
      for (const auto& [base, variant] : variants) {
        CAPTURE(variant);
        CHECK(hashed_part(variant) == hashed_part(base));
        CHECK(variant.find_first_of("{}", variant.find('?')) == std::string::npos);
      }
    }
  }
}

TEST_CASE("braces from the request are percent-encoded in keys") {
  std::string reason;
  auto pattern = RoutePattern::compile("/p/{id}", reason);
  REQUIRE(pattern);
  auto key_template = KeyTemplate::compile("p:{id}", *pattern, reason);
  REQUIRE(key_template);
  CHECK(template_key("", *key_template, Captures{{"id", "a{b}c"}}) == "p:a%7Bb%7Dc");
  CHECK(default_cache_key("{t}:", "/x", "q={1}") == "{t}:path:/x?q=%7B1%7D");
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("epoch_read_key_for: on a cluster, the epoch's copy in the guard's slot") {
  CHECK(epoch_read_key_for("cachecar:epoch", "gen:{product:42}", false) == "cachecar:epoch");
  for (std::string_view prefix : {"", "cc:", "{t}:", "a{b", "x}y{"}) {
    const std::string epoch = epoch_key_for(prefix);
    for (std::string_view key : {"product:42", "search?q=1", "{a}b", "", "{}x", "p:{"}) {
      CAPTURE(prefix);
      CAPTURE(key);
      const std::string guard = guard_key_for(prefix, std::string(prefix) + std::string(key));
      const std::string copy = epoch_read_key_for(epoch, guard, true);
      CHECK(is_epoch_key(epoch, copy));
      // The copy is always one a bump moves...
      const std::vector<std::string> bumped = epoch_bump_keys(epoch, true);
      CHECK(std::find(bumped.begin(), bumped.end(), copy) != bumped.end());
      // ...and, unless a stray '{' in the prefix takes the hash tag, in the guard's slot (a
      // prefix's own tag puts every key and copy in its one slot).
      if (prefix != "a{b" && prefix != "x}y{") {
        CHECK(key_hash_slot(copy) == key_hash_slot(guard));
      }
    }
  }
}

TEST_CASE("epoch_bump_keys: the epoch, and on a cluster one copy in each of the 16384 slots") {
  CHECK(epoch_bump_keys("cc:cachecar:epoch", false) ==
        std::vector<std::string>{"cc:cachecar:epoch"});
  std::vector<std::string> copies = epoch_bump_keys("cc:cachecar:epoch", true);
  REQUIRE(copies.size() == kClusterSlots + 1);
  CHECK(copies.front() == "cc:cachecar:epoch");  // for cachecars that read no copy
  copies.erase(copies.begin());
  std::vector<bool> slots(kClusterSlots, false);
  for (const std::string& copy : copies) {
    CHECK(copy != "cc:cachecar:epoch");
    CHECK(is_epoch_key("cc:cachecar:epoch", copy));
    slots[static_cast<size_t>(key_hash_slot(copy))] = true;
  }
  CHECK(std::all_of(slots.begin(), slots.end(), [](bool seen) { return seen; }));
}

TEST_CASE("is_epoch_key: the epoch and its copies, nothing that merely starts like it") {
  CHECK(is_epoch_key("cachecar:epoch", "cachecar:epoch"));
  CHECK(is_epoch_key("cachecar:epoch", "cachecar:epoch{123}"));
  CHECK_FALSE(is_epoch_key("cachecar:epoch", "cachecar:epochs"));
  CHECK_FALSE(is_epoch_key("cachecar:epoch", "cachecar:epoch{}"));
  CHECK_FALSE(is_epoch_key("cachecar:epoch", "cachecar:epoch{12"));
  CHECK_FALSE(is_epoch_key("cachecar:epoch", "epoch:{product:42}"));  // a body's stamp
  CHECK_FALSE(is_epoch_key("cc:cachecar:epoch", "cachecar:epoch"));
}

TEST_CASE("tracked_prefixes: the literal starts of the route keys and the epoch, disjoint") {
  Config config;
  config.routes.push_back(make_route("/products/{id}", "product:{id}"));
  config.routes.push_back(make_route("/products", "products:list"));
  config.routes.push_back(make_route("/deals/{id}", "product:deal:{id}"));  // inside product:
  CHECK(tracked_prefixes(config) ==
        std::vector<std::string>{"cachecar:epoch", "product:", "products:list"});

  config.cache.key_prefix = "cc:";
  config.cache.default_ttl = Duration(30'000);
  // Query variants are wrapped in a hash tag: "{cc:path:/x}?q=1", "{cc:search}?q=a".
  config.routes.push_back(make_route("/search", "search", {"q"}));
  CHECK(tracked_prefixes(config) ==
        std::vector<std::string>{"cc:cachecar:epoch", "cc:path:", "cc:product:",
                                 "cc:products:list", "cc:search", "{cc:path:", "{cc:search"});
  // A prefix with a hash tag of its own keeps variants unwrapped, under the same prefix.
  config.cache.key_prefix = "{t}:";
  CHECK(tracked_prefixes(config) ==
        std::vector<std::string>{"{t}:cachecar:epoch", "{t}:path:", "{t}:product:",
                                 "{t}:products:list", "{t}:search"});
  config.cache.key_prefix = "cc:";

  // A key that starts with a variable can be any key under the prefix.
  config.routes.push_back(make_route("/any/{name}", "{name}"));
  CHECK(tracked_prefixes(config) == std::vector<std::string>{"cc:", "{cc:path:", "{cc:search"});
  config.cache.key_prefix.clear();
  CHECK(tracked_prefixes(config) == std::vector<std::string>{""});
}

TEST_CASE("tracked_prefixes in cache.mode: http: every path, and every key's Vary variants") {
  Config config;
  config.cache.mode = CacheMode::Http;
  config.routes.push_back(make_route("/products/{id}", "product:{id}"));
  CHECK(tracked_prefixes(config) == std::vector<std::string>{"cachecar:epoch", "path:", "product:",
                                                             "{path:", "{product:"});
}

TEST_CASE("user_variant_key: in the key's slot, apart from Vary variants") {
  CHECK(user_variant_key("me", "ab") == "{me}#user=ab");
  CHECK(user_variant_key("{app}:me", "ab") == "{app}:me#user=ab");
  CHECK(user_variant_key("me", "ab") != vary_variant_key("me", "ab"));
}

TEST_CASE("vary_variant_key: in the key's slot") {
  CHECK(vary_variant_key("product:1", "ab") == "{product:1}#vary=ab");
  CHECK(vary_variant_key("{search}?q=a", "ab") == "{search}?q=a#vary=ab");
  CHECK(vary_variant_key("{t}:product:1", "ab") == "{t}:product:1#vary=ab");
}

}  // namespace
}  // namespace cachecar
