#pragma once
// Tags (issue 18): the names an origin gives an answer so that everything carrying one can be
// purged at once, as Fastly's Surrogate-Key (space-separated) and Cloudflare's Cache-Tag
// (comma-separated) do. cachecar reads the configured fields (cache.tags.fields) of a response
// it stores, records the stored key under each tag in Redis (cache/scripts.h: kTagScript), and
// may strip the fields from what clients receive. Pure.

#include <string>
#include <vector>

#include "config/config.h"
#include "http/message.h"

namespace cachecar {

// More tags than this on one answer are ignored (logged by the caller): each costs a Redis
// command at fill time.
inline constexpr size_t kMaxTagsPerResponse = 64;
// A longer tag is no tag: it would make a long Redis key of its own.
inline constexpr size_t kMaxTagBytes = 256;

// The tags in `fields` of `headers`: every field line of those names, split at spaces, tabs
// and commas (either list form, in any of the fields), each tag once, in first-seen order, at
// most kMaxTagsPerResponse. Tags with control bytes or longer than kMaxTagBytes are dropped.
std::vector<std::string> read_tags(const Headers& headers, const std::vector<std::string>& fields);

// Removes every line of `fields` from `headers`.
void remove_tag_fields(Headers& headers, const std::vector<std::string>& fields);

// read_tags() of a response from the upstream by cache.tags, and then its fields removed when
// cache.tags.strip says so (clients then never see them).
std::vector<std::string> take_tags(Headers& response, const Config::Cache::Tags& config);

}  // namespace cachecar
