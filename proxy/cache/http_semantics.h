#pragma once
// cache.mode: http (issue 16): RFC 9111 applied to one response about to be stored, and to one
// stored response about to be served. Pure: heads, the configuration and the clock (Unix
// seconds) in, decisions out; cache_control.h and freshness.h hold the rules' arithmetic.
//
// Age without a field of its own: an entry's stored time is backdated by the age the response
// already had when it arrived (§4.2.3 corrected_initial_age), so that "now - stored time" is
// the current age the RFC asks for, and the envelope keeps its layout.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_control.h"
#include "cache/envelope.h"
#include "config/config.h"
#include "http/message.h"

namespace cachecar {

struct HttpStoreDecision {
  bool store = false;
  Duration ttl{0};          // how long Redis keeps it: freshness left + the longest stale use
  int64_t initial_age = 0;  // seconds old on arrival
  std::string_view reason;  // why not, for debug logs
};

// §3 for a shared cache, with cachecar's own refusals (Set-Cookie, a Vary it cannot key by,
// larger than cache.max_object_size). `request` is the request as the client sent it;
// `request_time` and `response_time` bracket the upstream exchange (§4.2.3).
HttpStoreDecision decide_http_storage(const ResponseHead& response, const Headers& request,
                                      const Config::Cache& cache, int64_t request_time,
                                      int64_t response_time);

// Stored header lines ("Name: value\r\n"...) back as fields.
Headers parse_head_lines(std::string_view lines);

struct HttpVerdict {
  enum class Kind {
    Fresh,         // serve it
    StaleAllowed,  // stale, but the request's max-stale accepts it
    MustValidate,  // ask the origin (conditionally when `validator`)
    // RFC 5861 stale-while-revalidate: serve it, and have it refreshed in the background
    WhileRevalidating,
  };
  Kind kind = Kind::MustValidate;
  int64_t age = 0;        // seconds
  int64_t fresh_for = 0;  // lifetime - age: negative when stale
  bool validator = false;        // ETag or Last-Modified: a 304 can refresh it
  bool asked_by_request = false;  // MustValidate because of the request's own directives
};

// Whether `entry` may answer `request` at `now` (§4.2, §4.3, §5.2.1).
HttpVerdict judge_stored(const CachedView& entry, const Headers& request, int64_t now,
                         const Config::Cache& cache);
// The same, with the entry's head lines already parsed into `stored`.
HttpVerdict judge_stored(const CachedView& entry, const Headers& stored, const Headers& request,
                         int64_t now, const Config::Cache& cache);

// §13.1.2 and §13.1.3 of RFC 9110 for a GET or HEAD: the client's If-None-Match (weak
// comparison; it wins over If-Modified-Since) or If-Modified-Since says it already has
// `stored`, whose Last-Modified (or, without one, Date: RFC 9111 §4.3.2) it compares with.
// Then a 304 answers it.
bool client_has_current(const Headers& stored, const Headers& request);

// The stored lines a 304 carries (RFC 9110 §15.4.5): the validators and the fields that
// govern caching, none that describe a body.
std::string not_modified_lines(std::string_view stored_lines);

// Makes `request` (about to be forwarded) a revalidation of `stored`: the client's own
// conditions go, the stored ETag and Last-Modified are asked about (§4.3.1).
void add_validators(const Headers& stored, Headers& request);

// §3.2, §4.3.4: the stored lines updated by a 304's fields; the body, and the fields that
// describe it, stay as stored.
std::string refreshed_head_lines(std::string_view stored_lines, const Headers& not_modified);

}  // namespace cachecar
