#pragma once
// The stored form of a cached response, and turning it back into bytes for a client. Pure.
//
// Envelope layout (integers little-endian), versioned by its magic so a later layout can be
// told apart and a foreign value is never mistaken for one:
//   "CCE1"  magic and version                     4 bytes
//   stored_at, Unix time in milliseconds          8 bytes
//   ("CCE2" only) the cache epoch it was stored under  8 bytes
//   status                                        2 bytes
//   head length, then the header lines            4 bytes + "Name: value\r\n"...
//   body length, then the body                    4 bytes + bytes
//   ("CCS1"/"CCS2" only) soft-purged at, Unix ms   8 bytes
// A soft purge (issue 18) marks an entry stale in place: "CCE" becomes "CCS" and the time of
// the purge is appended (cache/scripts.h: kInvalidateScript), keeping the entry and its TTL.
// The header lines are kept pre-serialised, so a hit copies them instead of rebuilding them.
// A value read from Redis may have been written by anyone: decode() checks every length and
// every header line, and refuses framing fields, so a crafted value cannot split a response.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace cachecar {

// A stored response seen in place: views into the bytes it was read from (a Redis reply) or
// into a CachedResponse. Valid while those live.
struct CachedView {
  int status = 200;
  std::string_view head_lines;
  std::string_view body;
  int64_t stored_at_ms = 0;
  // The cache epoch its lookup saw (cache/journal: a bump makes every older entry a miss).
  uint64_t epoch = 0;
  // When a soft purge marked it stale (Unix ms); 0 when none did.
  int64_t stale_since_ms = 0;
};

struct CachedResponse {
  int status = 200;
  std::string head_lines;  // "Name: value\r\n" for each end-to-end header kept
  std::string body;
  int64_t stored_at_ms = 0;  // Unix time
  // Mode http, in memory only: the Vary selector of the request it was fetched for, so that a
  // coalesced request with another selector does not take it. Empty: unknown.
  std::string variant_selector{};
  // In memory only: the tags the origin named (cache/surrogate_keys.h), recorded with the
  // stored key when it is stored.
  std::vector<std::string> tags{};

  CachedView view() const { return CachedView{status, head_lines, body, stored_at_ms}; }
};

// Header lines worth storing from a response about to be cached: every field except the
// hop-by-hop and framing fields, Set-Cookie, Age, Via and X-Cache (added fresh on a hit).
std::string stored_head_lines(const Headers& headers);

// `epoch`: the cache epoch the fill's lookup read; 0 writes the CCE1 layout.
std::string encode_envelope(const CachedResponse& response, uint64_t epoch = 0);

// nullopt (with `error` set) for a truncated, foreign or malformed value. The view points
// into `bytes`: a hit is served without copying the entry.
std::optional<CachedView> view_envelope(std::string_view bytes, std::string& error);
// Whether `bytes` carry a soft purge's mark on lengths that add up: what the purge's script
// checks before it marks a value (cache/scripts.h: kInvalidateScript), and no more. A route's
// bare body that merely looked like an envelope was marked all the same, and is no longer the
// body stored.
bool carries_soft_purge_mark(std::string_view bytes);

// The same, copied out of `bytes`.
std::optional<CachedResponse> decode_envelope(std::string_view bytes, std::string& error);

// A route with format: body stores the body alone; a hit is then a 200 with the route's
// Content-Type.
CachedResponse response_from_body(std::string_view body, std::string_view content_type);

struct HitFraming {
  int64_t age_seconds = 0;
  std::string_view x_cache = "HIT";
  bool keep_alive = true;
  bool head_only = false;          // HEAD: Content-Length of the body, no body
  std::string_view extra_headers;  // "Name: value\r\n" lines added as they are (RateLimit-*)
};

// The complete response bytes for a client: status line, stored lines, Age, X-Cache, Via,
// Content-Length, Connection: close when not keeping alive, then the body.
void write_cached_response(const CachedView& response, const HitFraming& framing, std::string& out);

}  // namespace cachecar
