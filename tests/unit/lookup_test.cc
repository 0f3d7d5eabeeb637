// cache/lookup.h: the cache lookup's Redis commands and every shape of reply they may get.

#include "cache/lookup.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cache/scripts.h"
#include "unit_support.h"

namespace cachecar {
namespace {

// Routes, in order: 0 /products/{id} (envelope), 1 /bare/{id} (format: body, text/csv).
constexpr std::string_view kRoutes = R"(cache:
  key_prefix: "cc:"
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 60s
  - path: /bare/{id}
    key: bare:{id}
    ttl: 60s
    format: body
    content_type: text/csv
)";

RequestPlan lookup_plan(const Config& config, std::string_view target) {
  return plan_for(config, "GET", target, CacheAction::Lookup);
}

std::vector<RedisReplyPtr> replies_of(const std::vector<std::string>& bytes) {
  std::vector<RedisReplyPtr> replies;
  for (const std::string& reply : bytes) {
    replies.push_back(reply_of(reply));
  }
  return replies;
}

std::string bulk(std::string_view bytes) {
  return "$" + std::to_string(bytes.size()) + "\r\n" + std::string(bytes) + "\r\n";
}

constexpr std::string_view kNil = "$-1\r\n";

// An MGET reply of the value, the guard and the epoch, each already RESP (the epoch nil by
// default: never bumped).
std::string mget(std::string_view value, std::string_view guard, std::string_view epoch = kNil) {
  return "*3\r\n" + std::string(value) + std::string(guard) + std::string(epoch);
}

// The same for a format: body route, whose MGET also reads the entry's epoch stamp.
std::string bare_mget(std::string_view value, std::string_view guard,
                      std::string_view epoch = kNil, std::string_view stamp = kNil) {
  return "*4\r\n" + std::string(value) + std::string(guard) + std::string(epoch) +
         std::string(stamp);
}

// 2023-11-14T22:13:20Z.
constexpr int64_t kStoredAt = 1'700'000'000'000;

const CachedResponse kStored{203, "Content-Type: text/plain\r\nETag: \"v1\"\r\n", "hello",
                             kStoredAt};

using Args = std::vector<std::string>;

TEST_CASE("lookup_commands: MGET of the key, its guard and the epoch, PTTL for format: body") {
  const Config config = parse_ok(kRoutes);
  {
    const RequestPlan plan = lookup_plan(config, "/products/42");
    const std::vector<RedisCommand> commands = lookup_commands(plan);
    REQUIRE(commands.size() == 1);
    CHECK(commands[0].args ==
          Args{"MGET", "cc:product:42", "cc:gen:{cc:product:42}", "cc:cachecar:epoch"});
    CHECK(commands[0].script == nullptr);
  }
  {
    const RequestPlan plan = lookup_plan(config, "/bare/7");
    const std::vector<RedisCommand> commands = lookup_commands(plan);
    REQUIRE(commands.size() == 2);
    CHECK(commands[0].args == Args{"MGET", "cc:bare:7", "cc:gen:{cc:bare:7}", "cc:cachecar:epoch",
                                   "cc:epoch:{cc:bare:7}"});
    CHECK(commands[1].args == Args{"PTTL", "cc:bare:7"});
    CHECK(commands[1].script == nullptr);
  }
}

TEST_CASE("read_lookup: a hit from an envelope, with its Age") {
  struct Case {
    int64_t now_ms;
    int64_t age_seconds;
  };
  const Case cases[] = {
      {kStoredAt, 0},          {kStoredAt + 999, 0},         {kStoredAt + 1'000, 1},
      {kStoredAt + 12'345, 12}, {kStoredAt + 3'600'000, 3'600},
  };
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = lookup_plan(config, "/products/42");
  const std::vector<RedisReplyPtr> replies =
      replies_of({mget(bulk(encode_envelope(kStored)), bulk("5"))});
  for (const Case& c : cases) {
    CAPTURE(c.now_ms);
    const LookupResult result = read_lookup(plan, replies, c.now_ms);
    REQUIRE(result.kind == LookupResult::Kind::Hit);
    CHECK(result.age_seconds == c.age_seconds);
    CHECK(result.problem.empty());
    CHECK(result.bare_body_head.empty());
    const CachedView view = result.view();
    CHECK(view.status == 203);
    CHECK(view.head_lines == kStored.head_lines);
    CHECK(view.body == "hello");
    CHECK(view.stored_at_ms == kStoredAt);
    // The entry is a view into the reply, not a copy.
    const std::string_view value = reply_text(replies[0]->element[0]);
    CHECK(view.body.data() >= value.data());
    CHECK(view.body.data() + view.body.size() <= value.data() + value.size());
  }
}

TEST_CASE("read_lookup: a hit for a format: body route, its Age from the TTL left") {
  struct Case {
    std::string_view name;
    std::string pttl;  // RESP; "" when the reply is left out
    int64_t age_seconds;
  };
  const Case cases[] = {
      {"just stored", ":60000\r\n", 0},
      {"14.5s in", ":45500\r\n", 14},
      {"a second in", ":59000\r\n", 1},
      {"the last millisecond", ":1\r\n", 59},
      // Stored by another application with a longer TTL than the route's: not negative.
      {"more TTL left than the route's", ":120000\r\n", 0},
      {"no expiry", ":-1\r\n", 0},
      {"gone since the MGET", ":-2\r\n", 0},
      {"an error", "-ERR x\r\n", 0},
      {"no PTTL reply", "", 0},
  };
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = lookup_plan(config, "/bare/7");
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<std::string> bytes{bare_mget(bulk("a,b\n1,2\n"), kNil)};
    if (!c.pttl.empty()) {
      bytes.push_back(c.pttl);
    }
    const std::vector<RedisReplyPtr> replies = replies_of(bytes);
    const LookupResult result = read_lookup(plan, replies, kStoredAt);
    REQUIRE(result.kind == LookupResult::Kind::Hit);
    CHECK(result.age_seconds == c.age_seconds);
    CHECK(result.problem.empty());
    CHECK(result.bare_body_head == "Content-Type: text/csv\r\n");
    const CachedView view = result.view();
    CHECK(view.status == 200);
    CHECK(view.head_lines == "Content-Type: text/csv\r\n");
    CHECK(view.body == "a,b\n1,2\n");
  }
  // A bare body is served as it is, even one that looks like an envelope.
  const std::vector<RedisReplyPtr> replies =
      replies_of({bare_mget(bulk(encode_envelope(kStored)), kNil), ":60000\r\n"});
  const LookupResult result = read_lookup(plan, replies, kStoredAt);
  REQUIRE(result.kind == LookupResult::Kind::Hit);
  CHECK(result.view().body == encode_envelope(kStored));
  CHECK(result.view().head_lines == "Content-Type: text/csv\r\n");
}

TEST_CASE("read_lookup: misses, the guard they saw, and what was wrong") {
  struct Case {
    std::string_view name;
    bool bare;                         // the format: body route
    std::vector<std::string> replies;  // RESP, one per command; none: the call failed
    std::optional<std::string> seen_guard;
    std::string_view problem;  // a part of it; "" when there must be none
  };
  std::string truncated = encode_envelope(kStored);
  truncated.pop_back();
  std::string foreign_version = encode_envelope(kStored);
  foreign_version[3] = '9';
  const std::string nil(kNil);
  const Case cases[] = {
      {"nil value, nil guard", false, {mget(nil, nil)}, "", ""},
      {"nil value, a guard", false, {mget(nil, bulk("17"))}, "17", ""},
      {"nil value, an empty guard", false, {mget(nil, bulk(""))}, "", ""},
      {"nil value, the guard an error", false, {mget(nil, "-ERR guard\r\n")}, std::nullopt, ""},
      {"nil value, the guard an integer", false, {mget(nil, ":3\r\n")}, std::nullopt, ""},
      {"the whole MGET an error", false, {"-OOM command not allowed\r\n"}, std::nullopt,
       "OOM command not allowed"},
      {"the value an error", false, {mget("-ERR value\r\n", nil)}, "", "ERR value"},
      {"the value an integer", false, {mget(":5\r\n", nil)}, "", "non-string"},
      {"the value an array", false, {mget("*1\r\n:5\r\n", bulk("2"))}, "2", "non-string"},
      {"not an array at all", false, {"+OK\r\n"}, std::nullopt, "non-string"},
      {"an empty array", false, {"*0\r\n"}, std::nullopt, "non-string"},
      {"a foreign value", false, {mget(bulk("{\"id\":42}"), nil)}, "", "never served"},
      {"a truncated envelope", false, {mget(bulk(truncated), bulk("4"))}, "4", "never served"},
      {"another envelope version", false, {mget(bulk(foreign_version), nil)}, "", "never served"},
      {"no answer", false, {}, std::nullopt, ""},
      {"format: body, nil value", true, {bare_mget(nil, nil), ":-2\r\n"}, "", ""},
      {"format: body, nil value, a guard", true, {bare_mget(nil, bulk("9")), ":-2\r\n"}, "9", ""},
      {"format: body, the whole MGET an error", true, {"-LOADING loading\r\n", ":-2\r\n"},
       std::nullopt, "LOADING loading"},
      {"format: body, the value an integer", true, {bare_mget(":5\r\n", nil), ":100\r\n"}, "",
       "non-string"},
      {"format: body, no answer", true, {}, std::nullopt, ""},
  };
  const Config config = parse_ok(kRoutes);
  const RequestPlan envelope_plan = lookup_plan(config, "/products/42");
  const RequestPlan bare_plan = lookup_plan(config, "/bare/7");
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::vector<RedisReplyPtr> replies = replies_of(c.replies);
    const LookupResult result =
        read_lookup(c.bare ? bare_plan : envelope_plan, replies, kStoredAt + 1'000);
    CHECK(result.kind == LookupResult::Kind::Miss);
    CHECK(result.seen_guard == c.seen_guard);
    CAPTURE(result.problem);
    if (c.problem.empty()) {
      CHECK(result.problem.empty());
    } else {
      CHECK(result.problem.find(c.problem) != std::string::npos);
    }
    CHECK(result.age_seconds == 0);
  }
}

TEST_CASE("read_lookup: a hit does not need the guard") {
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = lookup_plan(config, "/products/42");
  const std::string guards[] = {std::string(kNil), bulk("3"), "-ERR guard\r\n"};
  for (const std::string& guard : guards) {
    CAPTURE(guard);
    const std::vector<RedisReplyPtr> replies =
        replies_of({mget(bulk(encode_envelope(kStored)), guard)});
    const LookupResult result = read_lookup(plan, replies, kStoredAt + 2'000);
    CHECK(result.kind == LookupResult::Kind::Hit);
    CHECK(result.age_seconds == 2);
    CHECK(result.view().body == "hello");
  }
}

TEST_CASE("read_lookup: the cache epoch decides whether an entry predates the last bump") {
  struct Case {
    std::string_view name;
    bool bare;
    std::vector<std::string> replies;
    bool hit;
    std::optional<std::string> seen_guard;  // misses only
    uint64_t epoch;                         // misses only: what a fill stamps
    std::string_view problem;               // a part of it; "" when there must be none
  };
  const std::string envelope_0 = bulk(encode_envelope(kStored));
  const std::string envelope_3 = bulk(encode_envelope(kStored, 3));
  const std::string nil(kNil);
  const std::string body = bulk("a,b\n");
  const Case cases[] = {
      {"never bumped, an entry of epoch 0", false, {mget(envelope_0, nil, nil)}, true, {}, 0, ""},
      {"epoch 0 written out", false, {mget(envelope_0, nil, bulk("0"))}, true, {}, 0, ""},
      {"bumped to 3 since the entry", false, {mget(envelope_0, bulk("g"), bulk("3"))}, false,
       "g", 3, ""},
      {"stored under epoch 3", false, {mget(envelope_3, nil, bulk("3"))}, true, {}, 0, ""},
      {"stored under 3, now 4", false, {mget(envelope_3, nil, bulk("4"))}, false, "", 4, ""},
      // The epoch key was lost (evicted, flushed): its entries are not trusted either.
      {"stored under 3, the epoch gone", false, {mget(envelope_3, nil, nil)}, false, "", 0, ""},
      {"an epoch that is not a number", false, {mget(envelope_0, nil, bulk("x1"))}, false,
       std::nullopt, 0, "not a number"},
      {"a negative epoch", false, {mget(nil, nil, bulk("-1"))}, false, std::nullopt, 0,
       "not a number"},
      {"an empty epoch", false, {mget(envelope_0, nil, bulk(""))}, false, std::nullopt, 0,
       "not a number"},
      {"the epoch an error", false, {mget(envelope_0, nil, "-ERR x\r\n")}, false, std::nullopt, 0,
       "not a number"},
      {"format: body, no stamp, never bumped", true, {bare_mget(body, nil), ":1000\r\n"}, true,
       {}, 0, ""},
      {"format: body, stamped 2, epoch 2", true,
       {bare_mget(body, nil, bulk("2"), bulk("2")), ":1000\r\n"}, true, {}, 0, ""},
      {"format: body, written by the app, then a bump", true,
       {bare_mget(body, nil, bulk("2"), nil), ":1000\r\n"}, false, "", 2, ""},
      {"format: body, stamped 1, epoch 2", true,
       {bare_mget(body, bulk("g"), bulk("2"), bulk("1")), ":1000\r\n"}, false, "g", 2, ""},
  };
  const Config config = parse_ok(kRoutes);
  const RequestPlan envelope_plan = lookup_plan(config, "/products/42");
  const RequestPlan bare_plan = lookup_plan(config, "/bare/7");
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::vector<RedisReplyPtr> replies = replies_of(c.replies);
    const LookupResult result = read_lookup(c.bare ? bare_plan : envelope_plan, replies, kStoredAt);
    CAPTURE(result.problem);
    REQUIRE((result.kind == LookupResult::Kind::Hit) == c.hit);
    if (!c.hit) {
      CHECK(result.seen_guard == c.seen_guard);
      CHECK(result.epoch == c.epoch);
    }
    if (c.problem.empty()) {
      CHECK(result.problem.empty());
    } else {
      CHECK(result.problem.find(c.problem) != std::string::npos);
    }
  }
}

TEST_CASE("read_lookup: a fenced key is never served nor filled") {
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = lookup_plan(config, "/products/42");
  const std::string fence = bulk(std::string(kFenceTokenPrefix) + "abc-1");
  for (const std::string& value : {bulk(encode_envelope(kStored)), std::string(kNil)}) {
    const std::vector<RedisReplyPtr> replies = replies_of({mget(value, fence)});
    const LookupResult result = read_lookup(plan, replies, kStoredAt);
    CHECK(result.kind == LookupResult::Kind::Miss);
    CHECK(result.seen_guard == std::nullopt);
  }
  // A guard that merely contains the word is an ordinary token.
  const std::vector<RedisReplyPtr> replies = replies_of({mget(std::string(kNil), bulk("a-fence-1"))});
  CHECK(read_lookup(plan, replies, kStoredAt).seen_guard == "a-fence-1");
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// A soft purge's mark (cache/envelope.h) on an encoded entry.
std::string soft_marked(std::string value, int64_t at_ms) {
  value[2] = 'S';
  for (int i = 0; i < 8; ++i) {
    value += static_cast<char>((static_cast<uint64_t>(at_ms) >> (8 * i)) & 0xff);
  }
  return value;
}

TEST_CASE("read_lookup: a soft-purged entry is a miss that keeps its guard, outside mode http") {
  const Config config = parse_ok(kRoutes);
  const RequestPlan plan = lookup_plan(config, "/products/42");
  const std::string marked = soft_marked(encode_envelope(kStored), kStoredAt + 5'000);
  const LookupResult result =
      read_lookup(plan, replies_of({mget(bulk(marked), bulk("soft-guard"))}), kStoredAt + 9'000);
  CHECK(result.kind == LookupResult::Kind::Miss);
  CHECK(result.seen_guard == "soft-guard");  // the refill stores over it
  CHECK(result.problem.empty());
  // The lookup came after the purge that marked it: a fill's tag check starts there.
  CHECK(result.after_purge_ms == kStoredAt + 5'000);
  CHECK(tag_check_lookup_ms(kStoredAt + 5'500, result.after_purge_ms) ==
        kStoredAt + 5'001 + kTagClockSkew.count());
  CHECK(tag_check_lookup_ms(kStoredAt + 9'000, result.after_purge_ms) == kStoredAt + 9'000);
  CHECK(tag_check_lookup_ms(kStoredAt + 5'500, 0) == kStoredAt + 5'500);

  // Mode http judges it instead: a stale hit, whose guard a revalidation's fill must find.
  const Config http = parse_ok("cache:\n  mode: http\n  key_prefix: \"cc:\"\n");
  const RequestPlan http_plan = plan_for(http, "GET", "/products/42", CacheAction::Lookup);
  REQUIRE(http_plan.http_semantics);
  const LookupResult judged = read_lookup(
      http_plan, replies_of({mget(bulk(marked), bulk("soft-guard"))}), kStoredAt + 9'000);
  CHECK(judged.kind == LookupResult::Kind::Hit);
  CHECK(judged.entry.stale_since_ms == kStoredAt + 5'000);
  CHECK(judged.seen_guard == "soft-guard");

  // A bare body that parsed as an envelope was marked like one: its bytes are not the body.
  const RequestPlan bare = lookup_plan(config, "/bare/1");
  const std::string body_like = soft_marked(encode_envelope(kStored), kStoredAt);
  const LookupResult bare_result = read_lookup(
      bare, replies_of({bare_mget(bulk(body_like), bulk("g")), ":60000\r\n"}), kStoredAt);
  CHECK(bare_result.kind == LookupResult::Kind::Miss);
  CHECK(bare_result.seen_guard == "g");
  // A body that only starts like one is served as it is.
  const std::vector<RedisReplyPtr> plain_replies =
      replies_of({bare_mget(bulk("CCS1,csv"), bulk("g")), ":60000\r\n"});
  const LookupResult plain_body = read_lookup(bare, plain_replies, kStoredAt);
  CHECK(plain_body.kind == LookupResult::Kind::Hit);
  CHECK(plain_body.entry.body == "CCS1,csv");
}

}  // namespace
}  // namespace cachecar
