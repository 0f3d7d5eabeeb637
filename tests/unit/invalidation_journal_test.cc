// cache/invalidation_journal.h: what a worker owes Redis, and when it may forget it.

#include "cache/invalidation_journal.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "unit_support.h"

namespace cachecar {
namespace {

constexpr std::string_view kRoutes = R"(cache:
  key_prefix: "cc:"
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 60s
    invalidate: [products:list]
  - path: /search
    key: search
    ttl: 60s
    query: [q]
)";

RequestPlan write_plan(const Config& config, std::string_view target) {
  return plan_for(config, "PUT", target, CacheAction::Invalidate);
}

RequestPlan read_plan(const Config& config, std::string_view target) {
  return plan_for(config, "GET", target, CacheAction::Lookup);
}

std::vector<std::string> sorted(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST_CASE("journal: a recorded write blocks its keys' lookups until a replay is confirmed") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(100);
  const RequestPlan lookup_42 = read_plan(config, "/products/42");
  const RequestPlan lookup_7 = read_plan(config, "/products/7");
  CHECK(journal.empty());
  CHECK_FALSE(journal.blocks(lookup_42.guard_key));

  CHECK(journal.record(write_plan(config, "/products/42")));
  CHECK_FALSE(journal.empty());
  CHECK(journal.size() == 2);  // the route key and its invalidate list
  CHECK(journal.blocks(lookup_42.guard_key));
  CHECK_FALSE(journal.blocks(lookup_7.guard_key));
  CHECK(sorted(journal.keys()) == std::vector<std::string>{"cc:product:42", "cc:products:list"});

  const InvalidationJournal::Batch batch = journal.next_batch(10);
  CHECK(batch.keys.size() == 2);
  CHECK(batch.epoch_record == 0);
  CHECK(journal.blocks(lookup_42.guard_key));  // taking a batch is not confirming it
  journal.confirm(batch);
  CHECK(journal.empty());
  CHECK_FALSE(journal.blocks(lookup_42.guard_key));
  CHECK(journal.stats().recorded == 2);
  CHECK(journal.stats().replayed == 2);
}

TEST_CASE("journal: a query variant is blocked by its route key's write") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(100);
  const RequestPlan write = write_plan(config, "/search");
  journal.record(write);
  CHECK(journal.blocks(read_plan(config, "/search?q=a").guard_key));
  CHECK(journal.blocks(read_plan(config, "/search").guard_key));
}

TEST_CASE("journal: a key recorded again during its replay stays owed") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(100);
  const RequestPlan write = write_plan(config, "/products/42");
  journal.record(write);
  const InvalidationJournal::Batch in_flight = journal.next_batch(10);
  // A second write fails while the replay is out: that replay may have run in Redis before
  // the second write reached the upstream, so it cannot settle it.
  journal.record(write);
  journal.confirm(in_flight);
  CHECK(journal.size() == 2);
  CHECK(journal.blocks(read_plan(config, "/products/42").guard_key));
  journal.confirm(journal.next_batch(10));
  CHECK(journal.empty());
}

TEST_CASE("journal: batches are bounded, and each confirms only its own keys") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(1000);
  for (int id = 0; id < 10; ++id) {
    journal.record(write_plan(config, "/products/" + std::to_string(id)));
  }
  // 10 route keys plus the one shared list key.
  CHECK(journal.size() == 11);
  const InvalidationJournal::Batch first = journal.next_batch(4);
  CHECK(first.keys.size() == 4);
  journal.confirm(first);
  CHECK(journal.size() == 7);
  journal.confirm(journal.next_batch(100));
  CHECK(journal.empty());
}

TEST_CASE("journal: overflow gives the keys back for one epoch bump that blocks everything") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(2);
  CHECK(journal.record(write_plan(config, "/products/1")));        // 2 keys: full
  CHECK(journal.record(write_plan(config, "/products/1")));        // the same keys again
  CHECK_FALSE(journal.record(write_plan(config, "/products/2")));  // a third
  CHECK(journal.epoch_owed());
  CHECK(journal.size() == 0);
  CHECK(journal.stats().overflows == 1);
  // Every lookup is blocked, also of keys never written.
  CHECK(journal.blocks(read_plan(config, "/products/99").guard_key));
  CHECK(journal.blocks(read_plan(config, "/search?q=x").guard_key));

  // A write after the overflow, while the bump is being sent.
  const InvalidationJournal::Batch bump = journal.next_batch(10);
  CHECK(bump.epoch_record != 0);
  CHECK(bump.epoch_keys == std::vector<std::string>{"cc:cachecar:epoch"});
  journal.record(write_plan(config, "/products/5"));
  journal.confirm(bump);
  CHECK_FALSE(journal.epoch_owed());
  CHECK(journal.stats().epoch_bumps == 1);
  // The later write is still owed; the rest is free again.
  CHECK(journal.blocks(read_plan(config, "/products/5").guard_key));
  CHECK_FALSE(journal.blocks(read_plan(config, "/products/99").guard_key));
  journal.confirm(journal.next_batch(10));
  CHECK(journal.empty());
}

TEST_CASE("journal: a confirmed bump settles the keys recorded before it was owed") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(100);
  journal.record(write_plan(config, "/products/1"));
  journal.record_epoch_bump("cc:cachecar:epoch");
  const InvalidationJournal::Batch batch = journal.next_batch(0);  // the bump alone
  CHECK(batch.keys.empty());
  journal.confirm(batch);
  CHECK(journal.empty());
}

TEST_CASE("journal: a bump owed again while one is out stays owed") {
  const Config config = parse_ok(kRoutes);
  InvalidationJournal journal(100);
  journal.record_epoch_bump("cc:cachecar:epoch");
  const InvalidationJournal::Batch first = journal.next_batch(10);
  journal.record_epoch_bump("cc:cachecar:epoch");
  journal.confirm(first);
  CHECK(journal.epoch_owed());
  journal.confirm(journal.next_batch(10));
  CHECK_FALSE(journal.epoch_owed());
}

}  // namespace
}  // namespace cachecar
