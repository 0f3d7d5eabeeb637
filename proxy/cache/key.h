#pragma once
// The Redis keys a request touches, derived from its route. Pure. Keys travel to Redis as
// binary-safe bulk strings, so no byte of a path can change a command; these functions only
// decide which bytes make up a key.

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/route_pattern.h"

namespace cachecar {

// Every key below carries request bytes, with '{' and '}' percent-encoded ("%7B", "%7D", the
// form RFC 3986 gives those bytes in a URI anyway). Braces in a key are Redis Cluster hash
// tags: escaping them keeps a client from choosing a key's slot, and keeps every key's guard
// in the key's own slot (see guard_key_for).

// prefix + `key_template` filled from `captures`.
std::string template_key(std::string_view prefix, const KeyTemplate& key_template,
                         const Captures& captures);

// "name=value&..." for the route's query_params present in `query`, in the route's order,
// the first occurrence of each; "" when none is present.
std::string keyed_query(const RouteConfig& route, std::string_view query);

// `route_key` when `keyed` (a keyed_query()) is empty, else a query variant of it in its Redis
// Cluster slot, so that one script can fill it with the route key's guard and variant set:
// "{search}?q=a" for "search", "{app}:search?q=a" for a key that has a hash tag already.
std::string query_variant_key(std::string route_key, std::string_view keyed);

// The key of one Vary variant of `key` (cache.mode: http): `key` + "#vary=" + `digest` (of the
// variant's selector, cache/vary.h), in `key`'s slot, so that the variant is filled with its
// guard and listed in its variant set like a query variant.
std::string vary_variant_key(std::string key, std::string_view digest);

// The key of one user's entry of `key` (a route with per_user: true): `key` + "#user=" +
// `digest` (of the user's name), in `key`'s slot, guarded and listed like a query variant.
std::string user_variant_key(std::string key, std::string_view digest);

// template_key() of the route's key, then "?" + keyed_query() when that is not empty.
std::string route_cache_key(std::string_view prefix, const RouteConfig& route,
                            const Captures& captures, std::string_view query);

// For cache.default: prefix + "path:" + path; with a query, a variant of that key as
// query_variant_key() makes one ("{path:/search}?q=a").
std::string default_cache_key(std::string_view prefix, std::string_view path,
                              std::string_view query);

// The invalidation guard of a cache key (design.md: "derived from the cache key"), under the
// same prefix so that an operator finds and flushes both together. It carries a Redis Cluster
// hash tag that puts it in the key's own slot, so the fill script that reads both stays
// single-slot: "gen:{product:42}" for "product:42"; a key that already has a hash tag keeps it
// ("gen:" + "a{t}b" hashes on "t" as the key does).
// Requires: `key` came from the functions above (no braces but a prefix's "{tag}").
std::string guard_key_for(std::string_view prefix, std::string_view key);

// The sorted set of a route key's query variants ("variants:{search}" holds "search?q=a", ...),
// scored by expiry time, so that a write to the route deletes every variant along with the key.
// Variants share the route key's guard: one write moves it for all of them.
std::string variants_key_for(std::string_view prefix, std::string_view key);

// The fences standing on a key (cache.on_invalidation_failure: reject): a sorted set of the
// fence tokens of writes still in progress, scored by expiry ("fences:{product:42}").
std::string fence_set_key_for(std::string_view prefix, std::string_view key);

// The lease of a background refresh (cache.mode: http, stale-while-revalidate): one replica of
// the fleet holds it while it refreshes the key ("lease:{product:42}").
std::string lease_key_for(std::string_view prefix, std::string_view key);

// A tag's set of the keys stored under it, "<prefix>tag:{<tag>}" (a sorted set scored by each
// entry's expiry), and the time of the tag's last purge, "<prefix>tag:{<tag>}:purged": both in
// the tag's own Redis Cluster slot, whatever slots their members are in (cache/scripts.h).
std::string tag_set_key_for(std::string_view prefix, std::string_view tag);
std::string tag_purged_key_for(std::string_view prefix, std::string_view tag);

// The cache epoch (cache/invalidation_journal.h): one integer that every lookup reads with its
// guard; a bump makes every entry stored before it a miss. Absent means 0.
std::string epoch_key_for(std::string_view prefix);

// On a Redis Cluster the epoch is kept in every hash slot, "cachecar:epoch{<a tag of the
// slot>}" (redis/cluster_slots.h), and a lookup reads the copy in its guard's slot: with the
// entry and guard in one MGET, on one primary, instead of a second command to whichever primary
// holds the epoch, which would also take the whole cache down with it. A bump moves every copy.
// `per_slot` false: the epoch itself.
std::string epoch_read_key_for(std::string_view epoch_key, std::string_view guard_key,
                               bool per_slot);
// What a bump of `epoch_key` moves: the epoch itself, and on a cluster its 16,384 copies.
std::vector<std::string> epoch_bump_keys(std::string_view epoch_key, bool per_slot);
// Whether `key` is `epoch_key` or one of its per-slot copies: a change to it is a bump.
bool is_epoch_key(std::string_view epoch_key, std::string_view key);

// For format: body, whose value has no room for it: the epoch the entry was stored under, in
// the key's slot ("epoch:{product:42}"). Absent means 0.
std::string epoch_stamp_key_for(std::string_view prefix, std::string_view key);

}  // namespace cachecar

namespace cachecar {

// The key prefixes a near cache asks Redis to announce changes of (CLIENT TRACKING ... BCAST
// PREFIX): the literal start of every route's key, cache.default's "path:" and the cache epoch,
// each under cache.key_prefix. Narrower than the key prefix alone, so that guards, fences,
// variant sets and rate-limit counters (every request writes one) cost no message. Redis
// refuses overlapping prefixes, so one that starts with another is left out; a route key that
// starts with a variable gives "", which stands for every key.
std::vector<std::string> tracked_prefixes(const Config& config);

}  // namespace cachecar
