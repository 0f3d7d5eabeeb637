#include "cache/cacheability.h"

#include <algorithm>
#include <optional>

#include "cache/cache_control.h"
#include "cache/http_semantics.h"
#include "http/chars.h"

namespace cachecar {
namespace {

// A Vary the key does not cover would serve one client's variant to another. The one Vary
// that is safe is Accept-Encoding on an identity-encoded body, which every client can read.
bool vary_is_safe(const Headers& headers) {
  bool safe = true;
  headers.for_each("Vary", [&](std::string_view value) {
    while (!value.empty()) {
      const size_t comma = value.find(',');
      const std::string_view field = trim_ows(value.substr(0, comma));
      if (!field.empty() && !iequals(field, "Accept-Encoding")) {
        safe = false;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      value.remove_prefix(comma + 1);
    }
  });
  if (!safe) {
    return false;
  }
  if (headers.contains("Vary")) {
    auto encoding = headers.get("Content-Encoding");
    return !encoding || iequals(trim_ows(*encoding), "identity");
  }
  return true;
}

}  // namespace

StoreDecision decide_storage(const ResponseHead& head, const RouteConfig* route, Duration ttl,
                             const Config::Cache& cache) {
  StoreDecision no;
  if (std::find(cache.statuses.begin(), cache.statuses.end(), head.status) ==
      cache.statuses.end()) {
    no.reason = "status not in cache.statuses";
    return no;
  }
  if (head.headers.contains("Set-Cookie")) {
    no.reason = "Set-Cookie";
    return no;
  }
  const ResponseCacheControl control = parse_response_cache_control(head.headers);
  if (control.no_store || control.is_private) {
    no.reason = "Cache-Control no-store or private";
    return no;
  }
  if (!vary_is_safe(head.headers)) {
    no.reason = "Vary on a request field the key does not include";
    return no;
  }
  if (head.framing == BodyFraming::ContentLength && head.content_length > cache.max_object_size) {
    no.reason = "larger than cache.max_object_size";
    return no;
  }
  if (route != nullptr && route->format == StoredFormat::Body &&
      head.headers.contains("Content-Encoding")) {
    // The application sharing the key expects the plain body.
    no.reason = "format: body cannot store an encoded body";
    return no;
  }
  Duration chosen = ttl;
  if (cache.respect_cache_control) {
    if (control.no_cache) {
      no.reason = "Cache-Control no-cache";
      return no;
    }
    const std::optional<int64_t> limit = control.s_maxage ? control.s_maxage : control.max_age;
    if (limit) {
      if (*limit == 0) {
        no.reason = "Cache-Control max-age=0";
        return no;
      }
      // Compared in seconds: *limit may be up to 2^31, too large to scale safely.
      if (*limit < chosen.count() / 1000) {
        chosen = Duration(*limit * 1000);
      }
    }
  }
  return StoreDecision{true, chosen, {}};
}

StoreDecision decide_storage(const ResponseHead& head, const RequestPlan& plan,
                             const Headers& request, const Config::Cache& cache,
                             int64_t request_time, int64_t response_time) {
  if (!plan.http_semantics) {
    return decide_storage(head, plan.route, plan.ttl, cache);
  }
  const HttpStoreDecision http =
      decide_http_storage(head, request, cache, request_time, response_time);
  return StoreDecision{http.store, http.ttl, http.reason, http.initial_age};
}

}  // namespace cachecar
