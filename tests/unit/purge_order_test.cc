// cache/purge_order.h, cache/surrogate_keys.h and admin/bearer_token.h: what a purge names,
// how keys found in Redis map to entries, the tags an answer carries, and the admin token.

#include "cache/purge_order.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "admin/bearer_token.h"
#include "cache/key.h"
#include "cache/surrogate_keys.h"

namespace cachecar {
namespace {

TEST_CASE("parse_purge_order: keys, a prefix and tags, or a reason") {
  std::string error;
  const auto all = parse_purge_order(
      R"({"keys":["product:1","product:2"],"prefix":"search","tags":["catalog"],"soft":false})",
      error);
  REQUIRE(all);
  CHECK(all->keys == std::vector<std::string>{"product:1", "product:2"});
  CHECK(all->prefix == "search");
  CHECK(all->tags == std::vector<std::string>{"catalog"});
  CHECK(all->kind() == "keys+prefix+tags");
  CHECK_FALSE(all->soft);
  CHECK(parse_purge_order(R"({"tags":["a"]})", error)->kind() == "tags");
  CHECK_FALSE(parse_purge_order(R"({"tags":["a"]})", error)->soft);
  CHECK(parse_purge_order(R"({"soft":true,"keys":["a"]})", error)->soft);

  struct Bad {
    const char* json;
    const char* reason;
  };
  const Bad bad[] = {
      {"", "expected a JSON object"},
      {"[]", "expected a JSON object"},
      {R"({"keys":"a"})", "\"keys\" must be a list of strings"},
      {R"({"keys":[""]})", "non-empty strings"},
      {R"({"tags":[1]})", "non-empty strings"},
      {R"({"prefix":""})", "\"prefix\" must be a non-empty string"},
      {R"({"prefix":["a"]})", "\"prefix\" must be a non-empty string"},
      {R"({"key":["a"]})", "unknown member \"key\""},
      {R"({"soft":true})", "nothing to purge"},
      {R"({"soft":"yes","keys":["a"]})", "\"soft\" must be true or false"},
      {R"({})", "nothing to purge"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.json);
    error.clear();
    CHECK_FALSE(parse_purge_order(b.json, error));
    CHECK(error.find(b.reason) != std::string::npos);
  }
  std::string many = R"({"keys":[)";
  for (size_t i = 0; i <= kMaxPurgeItems; ++i) {
    many += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\"";
  }
  many += "]}";
  CHECK_FALSE(parse_purge_order(many, error));
  CHECK(error.find("send several purges") != std::string::npos);
}

TEST_CASE("base_key_of: variants and users' entries belong to their route key") {
  CHECK(base_key_of("product:1") == "product:1");
  CHECK(base_key_of("{search}?q=a") == "search");
  CHECK(base_key_of("{search}?q=a#vary=ab") == "search");
  CHECK(base_key_of("{mine}#user=ab") == "mine");
  CHECK(base_key_of("{path:/p}?x=1") == "path:/p");
  // A key whose prefix holds the hash tag: its variants follow it unbraced.
  CHECK(base_key_of("{app}:search?q=a") == "{app}:search");
  CHECK(base_key_of("{app}:search") == "{app}:search");
  // Each is what the plan of such a request guards with.
  CHECK(base_key_of(query_variant_key("search", "q=a")) == "search");
  CHECK(base_key_of(user_variant_key("mine", "d")) == "mine");
}

TEST_CASE("is_companion_key: guards, sets, leases, epochs and tags are not entries") {
  for (const std::string& key : {guard_key_for("", "product:1"), variants_key_for("", "search"),
                                 fence_set_key_for("", "product:1"), lease_key_for("", "product:1"),
                                 epoch_stamp_key_for("", "raw:1"), epoch_key_for(""),
                                 tag_set_key_for("", "t"), tag_purged_key_for("", "t")}) {
    CAPTURE(key);
    CHECK(is_companion_key(key, ""));
  }
  CHECK(is_companion_key(guard_key_for("cc:", "cc:product:1"), "cc:"));
  CHECK_FALSE(is_companion_key("product:1", ""));
  CHECK_FALSE(is_companion_key("{search}?q=a", ""));
  // A route key that happens to begin like one, without the hash tag every companion has.
  CHECK_FALSE(is_companion_key("gen:1", ""));
}

TEST_CASE("glob_escaped: a prefix matches itself only") {
  CHECK(glob_escaped("product:") == "product:");
  CHECK(glob_escaped("a*b?c[d]e\\") == "a\\*b\\?c\\[d\\]e\\\\");
}

TEST_CASE("invalidation_of_member: the entry, the guard its fill checks, its route's fences") {
  const auto owed = invalidation_of_member("", "{search}?q=a\ngen:{search}");
  REQUIRE(owed);
  CHECK(owed->key == "{search}?q=a");
  CHECK(owed->guard == "gen:{search}");
  CHECK(owed->fences == fence_set_key_for("", "search"));
  CHECK_FALSE(invalidation_of_member("", "no guard"));
  CHECK_FALSE(invalidation_of_member("", "\nguard"));
  CHECK_FALSE(invalidation_of_member("", "key\n"));
  const OwedInvalidation plain = invalidation_of("", "product:1");
  CHECK(plain.guard == guard_key_for("", "product:1"));
  CHECK(plain.variants == variants_key_for("", "product:1"));
}

TEST_CASE("journal_form: variants are owed as their route key, one entry per guard") {
  RequestPlan plan;
  for (const std::string& key :
       {std::string("{search}?q=a"), std::string("{search}?q=b"), std::string("product:1")}) {
    const OwedInvalidation owed = invalidation_of("", key);
    plan.invalidate_keys.push_back(owed.key);
    plan.invalidate_guards.push_back(guard_key_for("", base_key_of(key)));
    plan.invalidate_variants.push_back(owed.variants);
    plan.invalidate_fences.push_back(owed.fences);
  }
  const RequestPlan journaled = journal_form(plan, "");
  CHECK(journaled.invalidate_keys == std::vector<std::string>{"search", "product:1"});
  CHECK(journaled.invalidate_guards ==
        std::vector<std::string>{guard_key_for("", "search"), guard_key_for("", "product:1")});
  CHECK(journaled.invalidate_variants[0] == variants_key_for("", "search"));
  CHECK(journaled.epoch_key == epoch_key_for(""));
}

TEST_CASE("read_tags: either list form, each tag once, bounded") {
  Headers headers;
  headers.add("Surrogate-Key", "product-1  catalog\tsale");
  headers.add("cache-tag", "catalog,summer , product-1");
  headers.add("Other", "x");
  const std::vector<std::string> fields = {"Surrogate-Key", "Cache-Tag"};
  CHECK(read_tags(headers, fields) ==
        std::vector<std::string>{"product-1", "catalog", "sale", "summer"});
  Headers hostile;
  hostile.add("Surrogate-Key", std::string(kMaxTagBytes + 1, 'x') + " ok \x01" + "bad");
  CHECK(read_tags(hostile, fields) == std::vector<std::string>{"ok"});
  Headers many;
  std::string value;
  for (size_t i = 0; i < kMaxTagsPerResponse + 10; ++i) {
    value += "t" + std::to_string(i) + " ";
  }
  many.add("Surrogate-Key", value);
  CHECK(read_tags(many, fields).size() == kMaxTagsPerResponse);
  remove_tag_fields(headers, fields);
  CHECK_FALSE(headers.contains("Surrogate-Key"));
  CHECK_FALSE(headers.contains("Cache-Tag"));
  CHECK(headers.contains("Other"));
}

TEST_CASE("bearer_token_matches: exactly the token, any case of the scheme") {
  const auto with = [](const char* value) {
    Headers headers;
    headers.add("Authorization", value);
    return headers;
  };
  CHECK(bearer_token_matches(with("Bearer s3cret"), "s3cret"));
  CHECK(bearer_token_matches(with("bearer s3cret"), "s3cret"));
  CHECK_FALSE(bearer_token_matches(with("Bearer s3cre"), "s3cret"));
  CHECK_FALSE(bearer_token_matches(with("Bearer s3cretx"), "s3cret"));
  CHECK_FALSE(bearer_token_matches(with("Basic s3cret"), "s3cret"));
  CHECK_FALSE(bearer_token_matches(with("Bearer  s3cret"), "s3cret"));
  CHECK_FALSE(bearer_token_matches(Headers{}, "s3cret"));
  CHECK_FALSE(bearer_token_matches(with("Bearer "), ""));
}

}  // namespace
}  // namespace cachecar
