#pragma once
// What a purge (issue 18) names, read from the admin API's JSON, and the pure helpers that turn
// what Redis holds into the keys to invalidate. No I/O.
//
//   {"keys": ["product:42"]}     cache keys as the routes name them (without cache.key_prefix)
//   {"prefix": "product:"}       every cached key that starts so (SCAN, bounded)
//   {"tags": ["catalog"]}        every entry stored with one of these tags
// One body may name any of the three, and add "soft": true to mark what it names stale instead
// of deleting it (cache/scripts.h: kInvalidateScript).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/invalidation_journal.h"
#include "cache/plan.h"
#include "redis/command.h"
#include "redis/reply.h"

namespace cachecar {

// Bounds on one purge: a caller with more sends more purges.
inline constexpr size_t kMaxPurgeItems = 10'000;   // keys plus tags named in one request
inline constexpr size_t kMaxPrefixKeys = 100'000;  // keys one prefix purge invalidates

struct PurgeOrder {
  std::vector<std::string> keys;
  std::vector<std::string> tags;
  std::optional<std::string> prefix;
  bool soft = false;

  // "keys", "tags", "prefix" or a combination joined by "+", for logs and metrics.
  std::string kind() const;
};

struct PurgeStats {
  uint64_t by_keys = 0;
  uint64_t by_prefix = 0;
  uint64_t by_tags = 0;
  uint64_t keys_removed = 0;  // keys Redis deleted
  uint64_t soft = 0;          // purges that marked entries stale instead
  uint64_t keys_marked = 0;   // keys soft purges marked stale
  uint64_t owed = 0;          // purges left to the journal or an epoch bump
};

// nullopt with `error` for a body that is not such an object: unknown members, members of the
// wrong type, nothing named, an empty key, tag or prefix, or more than kMaxPurgeItems.
std::optional<PurgeOrder> parse_purge_order(std::string_view json, std::string& error);

// The invalidation of `key` (with cache.key_prefix already in it, as stored): its guard,
// variant set and fence set, as a write to it would move and delete them.
OwedInvalidation invalidation_of(std::string_view key_prefix, std::string key);

// The entry a key found in Redis belongs to: a query variant "{search}?q=a", a Vary variant
// "{k}#vary=...", a user's entry "{k}#user=..." all belong to their route key, whose
// invalidation deletes them with it and moves the guard their fills check. Anything else is
// its own.
std::string base_key_of(std::string_view key);

// A key cachecar keeps beside entries (guards, variant and fence sets, leases, epochs, tag
// sets): never purged as an entry, only with one.
bool is_companion_key(std::string_view key, std::string_view key_prefix);

// `text` for a SCAN MATCH pattern, its glob characters escaped.
std::string glob_escaped(std::string_view text);

// A tag set member (cache/scripts.h: kTagScript), "key\nguard", as the invalidation it asks
// for; nullopt for a member of another shape.
std::optional<OwedInvalidation> invalidation_of_member(std::string_view key_prefix,
                                                       std::string_view member);

// Adds `owed` to `plan`'s invalidations (its invalidate_* lists, in step).
void add_invalidation(RequestPlan& plan, OwedInvalidation owed);

// The replies of kPurgeTagScript calls for `tag_count` tags, each member handed to `each` as
// the invalidation it asks for (invalidation_of_member). False when some tag's members are
// unknown (Redis did not answer for it): what it tagged is not named.
bool read_tag_members(const std::vector<RedisReplyPtr>& replies, size_t tag_count,
                      std::string_view key_prefix,
                      const std::function<void(OwedInvalidation)>& each);

// `plan`'s invalidations as the journal can hold them: it keeps one entry per guard, so a
// variant (which shares its route key's guard) is owed as its route key, whose replay deletes
// every variant. Duplicates go.
RequestPlan journal_form(const RequestPlan& plan, std::string_view key_prefix);

// The call that purges `tag` (cache/scripts.h: kPurgeTagScript): records the purge's time and
// takes the tag's members, to be invalidated by invalidation_of_member(). A `soft` purge leaves
// them in the tag's set, as their entries stay.
RedisCommand purge_tag_command(std::string_view key_prefix, std::string_view tag, bool soft);

}  // namespace cachecar
