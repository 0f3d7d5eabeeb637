// cache/cache_status.h: what the cache did for a request, and the names derived from it.

#include "cache/cache_status.h"

#include <doctest/doctest.h>

#include <iterator>
#include <set>
#include <string_view>

namespace cachecar {
namespace {

TEST_CASE("cache_status_name and x_cache_value") {
  struct Case {
    CacheStatus status;
    std::string_view name;
    std::string_view x_cache;  // "" for None, which has no X-Cache
  };
  const Case cases[] = {
      {CacheStatus::Hit, "HIT", "HIT"},
      {CacheStatus::Miss, "MISS", "MISS"},
      {CacheStatus::Bypass, "BYPASS", "BYPASS"},
      {CacheStatus::Coalesced, "COALESCED", "HIT"},  // a hit to the client
      {CacheStatus::Revalidated, "REVALIDATED", "HIT"},
      {CacheStatus::Stale, "STALE", "HIT"},
      {CacheStatus::None, "NONE", ""},
  };
  static_assert(std::size(cases) == kCacheStatuses);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(cache_status_name(c.status) == c.name);
    if (c.status != CacheStatus::None) {
      CHECK(x_cache_value(c.status) == c.x_cache);
    }
  }
}

TEST_CASE("cache_status_name: every status has its own label, usable at compile time") {
  static_assert(cache_status_name(CacheStatus::Coalesced) == "COALESCED");
  static_assert(x_cache_value(CacheStatus::Coalesced) == "HIT");
  std::set<std::string_view> names;
  for (size_t i = 0; i < kCacheStatuses; ++i) {
    const std::string_view name = cache_status_name(static_cast<CacheStatus>(i));
    CAPTURE(i);
    CHECK_FALSE(name.empty());
    names.insert(name);
  }
  CHECK(names.size() == kCacheStatuses);
}

}  // namespace
}  // namespace cachecar
