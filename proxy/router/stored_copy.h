#pragma once
// cache.mode: http: the stored response a request keeps while it asks the origin about it.
// A 304 to the copy's validators makes it fresh again (RFC 9111 §4.3.4): it answers the
// request and is stored refreshed. An upstream that fails (times out, refuses, answers 5xx)
// is stood in for by the copy while RFC 5861 stale-if-error (or cache.stale_if_error)
// allows.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cache/envelope.h"
#include "cache/http_semantics.h"
#include "config/config.h"
#include "http/message.h"

namespace cachecar {

class StoredCopy {
 public:
  enum class Use {
    None,        // no copy, or the upstream's answer is passed on as it is
    Confirmed,   // the upstream's 304 confirmed the copy: it answers, refreshed
    StandingIn,  // the upstream failed: the stale copy answers
  };

  void keep(const CachedView& entry, const HttpVerdict& verdict);
  bool kept() const { return copy_ != nullptr; }
  Use use() const { return use_; }

  // Before forwarding: the request asks about the copy's validators instead of the client's
  // (kept, to answer the client when the copy is confirmed).
  void ask_about_copy(Headers& request);
  // The upstream's head: decides use(). `request_time` and `response_time` (Unix seconds)
  // bracket the exchange. True when the head is absorbed: the copy answers once the
  // upstream's response is complete, and none of it reaches the client.
  // `request` is the request as forwarded.
  bool absorbs(const ResponseHead& head, const Headers& request, int64_t request_time,
               int64_t response_time, const Config::Cache& cache);
  // Confirmed: the tags the 304 named (cache/surrogate_keys.h), recorded when the refreshed
  // copy is stored, so that a tag purge still finds it for its new lifetime. The envelope keeps
  // no tags: a 304 that names none leaves the copy out of its old tags' sets once its first
  // lifetime ends.
  void tag_confirmed(std::vector<std::string> tags);
  // The upstream failed before any head: whether the copy may answer instead (use() becomes
  // StandingIn).
  bool stands_in_for_failure(int64_t now, const Config::Cache& cache);

  // Confirmed: the refreshed response, whether and how long it is stored again, and whether
  // the client's own condition matches it (a 304 to the client).
  std::shared_ptr<const CachedResponse> response() const { return copy_; }
  bool refreshed_storable() const { return refreshed_storable_; }
  Duration refreshed_ttl() const { return refreshed_ttl_; }
  bool client_has_it() const;
  int64_t age(int64_t now) const;

 private:
  bool may_stand_in(int64_t now, const Config::Cache& cache) const;

  std::shared_ptr<CachedResponse> copy_;
  HttpVerdict verdict_;
  Headers client_conditions_;  // the client's If-None-Match and If-Modified-Since
  Use use_ = Use::None;
  Duration refreshed_ttl_{0};
  bool refreshed_storable_ = false;
};

}  // namespace cachecar
