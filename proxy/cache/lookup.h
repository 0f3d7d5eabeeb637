#pragma once
// The cache lookup's Redis commands and the decoder of their replies. Pure: the replies and
// the clock are values, so every shape Redis may answer (nil, error, a foreign value, a value
// without its guard) is tested without a socket.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/envelope.h"
#include "cache/http_semantics.h"
#include "cache/vary.h"
#include "cache/plan.h"
#include "redis/batch.h"

namespace cachecar {

// MGET key guard epoch (and, for format: body, the entry's epoch stamp) and, for format: body
// (no stored time) or when `want_ttl` (a near cache bounds its copy by it), PTTL key.
// Requires: plan.action == CacheAction::Lookup.
std::vector<RedisCommand> lookup_commands(const RequestPlan& plan, bool want_ttl = false);

struct LookupResult {
  enum class Kind {
    Hit,   // `entry` may be served
    Miss,  // nothing servable is stored
    // cache.mode: http (judge_http_hit):
    NotModified,  // `entry` is fresh and the client's condition says it has it: answer 304
    Stale,        // `entry` may not be served before the origin is asked: a miss that keeps it
    Varies,       // the key holds a vary index: `vary` names the fields that select the variant
  };
  Kind kind = Kind::Miss;
  // Hit: the stored response, viewing into the replies (serve it before they go). For
  // format: body its head lines are empty: see head_lines().
  CachedView entry;
  int64_t age_seconds = 0;
  // Hit, when PTTL was asked: what Redis has left of the entry's TTL; -1 when unknown.
  int64_t ttl_left_ms = -1;
  // Mode http: what RFC 9111 said of `entry` (cache/http_semantics.h).
  HttpVerdict http;
  // Mode http, a Hit: stale, served while it is refreshed in the background.
  bool refresh = false;
  // Varies: the names the variants are selected by.
  VaryFields vary;
  // Miss, and in mode http also a hit: the guard value the lookup saw ("" when there is none yet), which a fill must still
  // find. nullopt when Redis did not say (an error, no answer): such a miss may not be stored,
  // since nothing tells which writes it came after.
  std::optional<std::string> seen_guard;
  // Miss: the cache epoch the lookup saw, which a fill stamps on the entry.
  uint64_t epoch = 0;
  // The entry read carried a soft purge's mark of this time (Redis's clock, Unix ms): the
  // lookup came after that purge, which a fill's tag check then need not fear (scripts.h:
  // tag_check_lookup_ms). 0 for none.
  int64_t after_purge_ms = 0;
  // Why a value that was there is not served (an error reply, a foreign or corrupt value),
  // for the log; empty when there was nothing to say.
  std::string problem;
  // format: body: the route's Content-Type line, which the stored body lacks.
  std::string bare_body_head;

  CachedView view() const {
    CachedView view = entry;
    if (!bare_body_head.empty()) {
      view.head_lines = bare_body_head;
    }
    return view;
  }
};

// Mode http: judges a Hit by its own headers and the request's: it stays a Hit (Age is the
// RFC's current age), or becomes NotModified or Stale. `now_ms` is Unix time.
void judge_http_hit(LookupResult& result, const Headers& request, int64_t now_ms,
                    const Config::Cache& cache);

// `replies` are the lookup's own (see lookup_commands); empty when the call failed.
// `now_ms` is Unix time, for the Age of an envelope.
LookupResult read_lookup(const RequestPlan& plan, StageReplies replies, int64_t now_ms);

}  // namespace cachecar
