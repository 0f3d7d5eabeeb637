#include "cache/cacheability.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "http/chars.h"

namespace cachecar {
namespace {

struct CacheControl {
  bool no_store = false;
  bool is_private = false;
  bool no_cache = false;
  std::optional<int64_t> max_age;
  std::optional<int64_t> s_maxage;
};

// RFC 9111 §1.2.2 delta-seconds: a value too large to represent is taken as 2^31.
constexpr int64_t kDeltaSecondsCap = int64_t{1} << 31;

std::optional<int64_t> seconds(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  int64_t out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec == std::errc::result_out_of_range || out > kDeltaSecondsCap) {
    return kDeltaSecondsCap;
  }
  return out;
}

CacheControl parse_cache_control(const Headers& headers) {
  CacheControl out;
  headers.for_each("Cache-Control", [&](std::string_view value) {
    while (!value.empty()) {
      const size_t comma = value.find(',');
      const std::string_view directive = trim_ows(value.substr(0, comma));
      const size_t equals = directive.find('=');
      const std::string_view name = trim_ows(directive.substr(0, equals));
      const std::string_view argument = equals == std::string_view::npos
                                            ? std::string_view()
                                            : trim_ows(directive.substr(equals + 1));
      if (iequals(name, "no-store")) {
        out.no_store = true;
      } else if (iequals(name, "private")) {
        out.is_private = true;
      } else if (iequals(name, "no-cache")) {
        out.no_cache = true;
      } else if (iequals(name, "max-age")) {
        // An unparsable value means "stale" (RFC 9111 §1.2.2): treat it as 0.
        out.max_age = seconds(argument).value_or(0);
      } else if (iequals(name, "s-maxage")) {
        out.s_maxage = seconds(argument).value_or(0);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      value.remove_prefix(comma + 1);
    }
  });
  return out;
}

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
  const CacheControl control = parse_cache_control(head.headers);
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

}  // namespace cachecar
