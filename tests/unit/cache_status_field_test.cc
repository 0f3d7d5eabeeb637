// cache/cache_status_field.h: RFC 9211 Cache-Status values.

#include "cache/cache_status_field.h"

#include <doctest/doctest.h>

#include <optional>
#include <string_view>

namespace cachecar {
namespace {

CacheStatusReport hit(std::optional<int64_t> ttl = std::nullopt) {
  CacheStatusReport report;
  report.hit = true;
  report.ttl = ttl;
  return report;
}

CacheStatusReport forwarded(std::string_view why, int status = 0) {
  CacheStatusReport report;
  report.fwd = why;
  report.fwd_status = status;
  return report;
}

TEST_CASE("cache_status_value: the parameters RFC 9211 defines, in order") {
  CHECK(cache_status_value(hit(12)) == "cachecar; hit; ttl=12");
  CHECK(cache_status_value(forwarded("bypass")) == "cachecar; fwd=bypass");

  CacheStatusReport stored = forwarded("uri-miss", 200);
  stored.stored = true;
  CHECK(cache_status_value(stored) == "cachecar; fwd=uri-miss; fwd-status=200; stored");

  CacheStatusReport revalidated = forwarded("stale", 304);
  revalidated.ttl = -3;
  revalidated.stored = true;
  CHECK(cache_status_value(revalidated) == "cachecar; fwd=stale; fwd-status=304; ttl=-3; stored");

  CacheStatusReport collapsed = forwarded("uri-miss");
  collapsed.collapsed = true;
  CHECK(cache_status_value(collapsed) == "cachecar; fwd=uri-miss; collapsed");

  CacheStatusReport keyed = hit();
  keyed.key = "product:42";
  CHECK(cache_status_value(keyed) == "cachecar; hit; key=\"product:42\"");

  CacheStatusReport stale = forwarded("stale");
  stale.detail = "stale-if-error";
  CHECK(cache_status_value(stale) == "cachecar; fwd=stale; detail=\"stale-if-error\"");
}

TEST_CASE("cache_status_value: an sf-string escapes quotes and backslashes, drops the rest") {
  CacheStatusReport keyed = hit();
  keyed.key = "a\"b\\c\x01\xff";
  CHECK(cache_status_value(keyed) == "cachecar; hit; key=\"a\\\"b\\\\c\"");
}

}  // namespace
}  // namespace cachecar
