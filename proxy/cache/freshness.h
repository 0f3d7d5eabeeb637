#pragma once
// RFC 9111 §4.2 for a shared cache (the HTTP cache mode of issue 16): how long a response stays
// fresh, how old a stored one is, and whether it may be served without asking the origin,
// stale or not. Pure: every time is Unix seconds passed in, so tests never sleep.

#include <cstdint>
#include <optional>
#include <string_view>

#include "cache/cache_control.h"
#include "http/message.h"

namespace cachecar {

// An HTTP-date (RFC 9110 §5.6.7): the IMF-fixdate form, and the obsolete RFC 850 and asctime
// forms every recipient must accept. nullopt for anything else.
std::optional<int64_t> parse_http_date(std::string_view text);

// RFC 9110 §15.1: the statuses a cache may store with a heuristic lifetime.
bool heuristically_cacheable(int status);

// §4.2.1, as a shared cache computes it: s-maxage, else max-age, else Expires minus Date (an
// invalid Expires, "0" included, is in the past: §5.3). Without them (§4.2.2), 10% of the time
// since Last-Modified, capped by `heuristic_max`, when the status allows a heuristic or the
// response is public. nullopt when nothing gives a lifetime: the response is not stored for
// its freshness. `response_time` stands in for a missing Date.
std::optional<int64_t> freshness_lifetime(int status, const ResponseCacheControl& control,
                                          const Headers& response, int64_t response_time,
                                          int64_t heuristic_max);

// §4.2.3 corrected_initial_age: the response's age when it was received, from its Age and
// Date and the time the request took. Stored with the response; current_age() adds the time
// it has been stored since.
int64_t initial_age(const Headers& response, int64_t request_time, int64_t response_time);
inline int64_t current_age(int64_t initial, int64_t response_time, int64_t now) {
  return initial + (now > response_time ? now - response_time : 0);
}

enum class Servable {
  Fresh,         // serve it
  StaleAllowed,  // stale, but the request's max-stale accepts it: serve it (with a warning)
  MustValidate,  // ask the origin first (a conditional request when there is a validator)
};

// §4.2, §4.2.4 and the request's directives (§5.2.1): whether a stored response of
// `lifetime` and `age` may be served without contacting the origin.
Servable servable(int64_t lifetime, int64_t age, const ResponseCacheControl& response,
                  const RequestCacheControl& request);

// RFC 5861 §3: a stale response may be served while it is refreshed in the background when it
// is stale by no more than its stale-while-revalidate, and nothing forbids serving it stale.
bool may_serve_while_revalidating(int64_t lifetime, int64_t age,
                                  const ResponseCacheControl& response);

// RFC 5861 §4: a stale response may stand in for an error (a timeout, a refused connection, a
// 5xx) when it is stale by no more than its stale-if-error, or `configured` (cache.
// stale_if_error) when it gives none, and nothing forbids serving it stale.
bool may_serve_on_error(int64_t lifetime, int64_t age, const ResponseCacheControl& response,
                        std::optional<int64_t> configured);

}  // namespace cachecar
