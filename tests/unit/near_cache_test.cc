// cache/near_cache.h: the byte bound, the two lifetimes, invalidation by key and by guard, and
// the mark that keeps a reply overtaken by its invalidation out of the near cache.

#include "cache/near_cache.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace cachecar {
namespace {

NearCache::Response response(const std::string& body) {
  auto r = std::make_shared<CachedResponse>();
  r->body = body;
  return r;
}

// Stores as a lookup does: mark, reply, release, store.
bool read_and_store(NearCache& cache, const std::string& key, const std::string& body,
                    uint64_t now_ms, int64_t redis_ttl_ms = 60'000, const std::string& guard = "") {
  const NearCache::Mark mark = cache.mark(key);
  if (!cache.release(key, mark)) {
    return false;
  }
  cache.store(key, guard.empty() ? "gen:{" + key + "}" : guard, response(body), now_ms,
              redis_ttl_ms);
  return true;
}

TEST_CASE("near cache: a stored entry is found until its Redis TTL or max_ttl runs out") {
  NearCache cache(1 << 20, Duration(10'000));
  REQUIRE(read_and_store(cache, "a", "A", 1000, 60'000));
  REQUIRE(read_and_store(cache, "b", "B", 1000, 2'000));
  REQUIRE(cache.find("a", 1000) != nullptr);
  CHECK(cache.find("a", 1000)->body == "A");
  CHECK(cache.find("b", 2999) != nullptr);
  CHECK(cache.find("b", 3000) == nullptr);  // Redis's TTL: 2 s
  CHECK(cache.find("a", 10'999) != nullptr);
  CHECK(cache.find("a", 11'000) == nullptr);  // max_ttl: 10 s
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.find("missing", 0) == nullptr);
  // Nothing left in Redis's TTL (or an unknown one): not stored at all.
  cache.store("c", "gen:{c}", response("C"), 0, 0);
  cache.store("d", "gen:{d}", response("D"), 0, -1);
  CHECK(cache.size() == 0);
}

TEST_CASE("near cache: max_bytes holds, the least recently used entry goes first") {
  const std::string body(1000, 'x');
  NearCache cache(5000, Duration(10'000));  // room for a few entries of ~1.3 KB
  for (int i = 0; i < 20; ++i) {
    REQUIRE(read_and_store(cache, "k" + std::to_string(i), body, 0));
    CHECK(cache.bytes() <= 5000);
  }
  const size_t kept = cache.size();
  CHECK(kept >= 3);
  CHECK(kept < 20);
  CHECK(cache.find("k19", 1) != nullptr);
  CHECK(cache.find("k0", 1) == nullptr);
  // A find makes an entry recent: the oldest other one is evicted instead.
  const std::string oldest = "k" + std::to_string(20 - kept);
  REQUIRE(cache.find(oldest, 1) != nullptr);
  REQUIRE(read_and_store(cache, "new", body, 1));
  CHECK(cache.find(oldest, 1) != nullptr);
  CHECK(cache.find("k" + std::to_string(21 - kept), 1) == nullptr);
  // An entry larger than the whole cache is not kept, and evicts nothing.
  const size_t before = cache.size();
  cache.store("huge", "gen:{huge}", response(std::string(10'000, 'y')), 1, 60'000);
  CHECK(cache.find("huge", 1) == nullptr);
  CHECK(cache.size() == before);
  // A smaller bound applies at once.
  cache.set_limits(2000, Duration(10'000));
  CHECK(cache.bytes() <= 2000);
  CHECK(cache.stats().evictions > 0);
}

TEST_CASE("near cache: storing a key again replaces its entry") {
  NearCache cache(1 << 20, Duration(10'000));
  REQUIRE(read_and_store(cache, "a", "old", 0));
  const size_t bytes = cache.bytes();
  REQUIRE(read_and_store(cache, "a", "new", 0));
  CHECK(cache.find("a", 1)->body == "new");
  CHECK(cache.size() == 1);
  CHECK(cache.bytes() == bytes);
}

TEST_CASE("near cache: an invalidation that overtakes the reply keeps the reply out") {
  NearCache cache(1 << 20, Duration(10'000));
  SUBCASE("one read") {
    const NearCache::Mark mark = cache.mark("a");
    cache.invalidate("a");  // the message arrives before the reply it makes stale
    CHECK_FALSE(cache.release("a", mark));
  }
  SUBCASE("two reads of the key in flight, the invalidation between their sends") {
    const NearCache::Mark first = cache.mark("a");
    cache.invalidate("a");
    const NearCache::Mark second = cache.mark("a");  // sent after: reads the new value
    CHECK(first != second);
    CHECK_FALSE(cache.release("a", first));
    CHECK(cache.release("a", second));
  }
  SUBCASE("two reads, both before the invalidation") {
    const NearCache::Mark first = cache.mark("a");
    const NearCache::Mark second = cache.mark("a");
    cache.invalidate("a");
    CHECK_FALSE(cache.release("a", first));
    CHECK_FALSE(cache.release("a", second));
  }
  SUBCASE("two reads, no invalidation: both may store, and the mark is gone after") {
    const NearCache::Mark first = cache.mark("a");
    const NearCache::Mark second = cache.mark("a");
    CHECK(cache.release("a", first));
    CHECK(cache.release("a", second));
    CHECK_FALSE(cache.release("a", second));  // released already
  }
  SUBCASE("an invalidation of another key changes nothing") {
    const NearCache::Mark mark = cache.mark("a");
    cache.invalidate("b");
    CHECK(cache.release("a", mark));
  }
  SUBCASE("a lost connection (clear) voids every mark") {
    const NearCache::Mark a = cache.mark("a");
    const NearCache::Mark b = cache.mark("b");
    cache.clear();
    CHECK_FALSE(cache.release("a", a));
    CHECK_FALSE(cache.release("b", b));
  }
}

TEST_CASE("near cache: invalidation by key, by guard (variants), and clear") {
  NearCache cache(1 << 20, Duration(10'000));
  REQUIRE(read_and_store(cache, "search", "S", 0, 60'000, "gen:{search}"));
  REQUIRE(read_and_store(cache, "search?q=a", "A", 0, 60'000, "gen:{search}"));
  REQUIRE(read_and_store(cache, "search?q=b", "B", 0, 60'000, "gen:{search}"));
  REQUIRE(read_and_store(cache, "other", "O", 0, 60'000, "gen:{other}"));

  cache.invalidate("search?q=a");
  CHECK(cache.find("search?q=a", 1) == nullptr);
  CHECK(cache.find("search", 1) != nullptr);
  CHECK(cache.stats().invalidations == 1);

  cache.invalidate_guard("gen:{search}");  // a write to the route: the key and its variants
  CHECK(cache.find("search", 1) == nullptr);
  CHECK(cache.find("search?q=b", 1) == nullptr);
  CHECK(cache.find("other", 1) != nullptr);
  cache.invalidate_guard("gen:{nothing}");
  CHECK(cache.size() == 1);

  cache.clear();
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.stats().flushes == 1);
  // The guard index went with the entries: a key stored again is dropped by its guard again.
  REQUIRE(read_and_store(cache, "search", "S2", 2, 60'000, "gen:{search}"));
  cache.invalidate_guard("gen:{search}");
  CHECK(cache.find("search", 3) == nullptr);
}

}  // namespace
}  // namespace cachecar
