#include "cache/cache_control.h"

#include <charconv>

#include "http/chars.h"

namespace cachecar {
namespace {

constexpr std::string_view kTargetedFields[] = {"Cachecar-Cache-Control", "CDN-Cache-Control"};

// delta-seconds (§1.2.2), quoted or not; nullopt when it is no number.
std::optional<int64_t> delta_seconds(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  int64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec == std::errc::result_out_of_range || out > kDeltaSecondsCap) {
    return kDeltaSecondsCap;
  }
  return out;
}

// Calls `on_directive(name, argument)` for each directive of each `field` line. A comma inside
// a quoted argument (no-cache="a, b") does not split it.
template <typename OnDirective>
void for_each_directive(const Headers& headers, std::string_view field, OnDirective on_directive) {
  headers.for_each(field, [&](std::string_view value) {
    size_t start = 0;
    bool quoted = false;
    for (size_t i = 0; i <= value.size(); ++i) {
      if (i < value.size()) {
        const char c = value[i];
        if (c == '"' && (i == 0 || value[i - 1] != '\\')) {
          quoted = !quoted;
        }
        if (c != ',' || quoted) {
          continue;
        }
      }
      const std::string_view directive = trim_ows(value.substr(start, i - start));
      start = i + 1;
      if (directive.empty()) {
        continue;
      }
      const size_t equals = directive.find('=');
      const std::string_view name = trim_ows(directive.substr(0, equals));
      const std::string_view argument = equals == std::string_view::npos
                                            ? std::string_view()
                                            : trim_ows(directive.substr(equals + 1));
      on_directive(name, argument, equals != std::string_view::npos);
    }
  });
}

// The first value of a seconds directive wins (§4.2.1: "use the first value").
void take_seconds(std::optional<int64_t>& slot, std::string_view argument, bool stale_if_bad) {
  if (slot) {
    return;
  }
  const auto value = delta_seconds(argument);
  if (value) {
    slot = value;
  } else if (stale_if_bad) {
    slot = 0;
  }
}

}  // namespace

ResponseCacheControl parse_response_cache_control(const Headers& headers, std::string_view field) {
  ResponseCacheControl out;
  for_each_directive(headers, field,
                     [&out](std::string_view name, std::string_view argument, bool) {
                       if (iequals(name, "no-store")) {
                         out.no_store = true;
                       } else if (iequals(name, "no-cache")) {
                         out.no_cache = true;
                       } else if (iequals(name, "private")) {
                         out.is_private = true;
                       } else if (iequals(name, "public")) {
                         out.is_public = true;
                       } else if (iequals(name, "must-revalidate")) {
                         out.must_revalidate = true;
                       } else if (iequals(name, "proxy-revalidate")) {
                         out.proxy_revalidate = true;
                       } else if (iequals(name, "must-understand")) {
                         out.must_understand = true;
                       } else if (iequals(name, "no-transform")) {
                         out.no_transform = true;
                       } else if (iequals(name, "max-age")) {
                         take_seconds(out.max_age, argument, true);
                       } else if (iequals(name, "s-maxage")) {
                         take_seconds(out.s_maxage, argument, true);
                       } else if (iequals(name, "stale-while-revalidate")) {
                         take_seconds(out.stale_while_revalidate, argument, false);
                       } else if (iequals(name, "stale-if-error")) {
                         take_seconds(out.stale_if_error, argument, false);
                       }
                     });
  return out;
}

RequestCacheControl parse_request_cache_control(const Headers& headers) {
  RequestCacheControl out;
  for_each_directive(headers, "Cache-Control",
                     [&out](std::string_view name, std::string_view argument, bool has_argument) {
                       if (iequals(name, "no-cache")) {
                         out.no_cache = true;
                       } else if (iequals(name, "no-store")) {
                         out.no_store = true;
                       } else if (iequals(name, "only-if-cached")) {
                         out.only_if_cached = true;
                       } else if (iequals(name, "no-transform")) {
                         out.no_transform = true;
                       } else if (iequals(name, "max-age")) {
                         // A malformed request max-age asks for nothing stale: 0.
                         take_seconds(out.max_age, argument, true);
                       } else if (iequals(name, "min-fresh")) {
                         take_seconds(out.min_fresh, argument, false);
                       } else if (iequals(name, "max-stale")) {
                         if (!has_argument) {
                           out.max_stale_any = true;
                         } else {
                           take_seconds(out.max_stale, argument, false);
                         }
                       }
                     });
  return out;
}

std::string_view governing_cache_control_field(const Headers& headers) {
  for (const std::string_view field : kTargetedFields) {
    if (headers.contains(field)) {
      return field;
    }
  }
  return "Cache-Control";
}

ResponseCacheControl effective_response_cache_control(const Headers& headers) {
  return parse_response_cache_control(headers, governing_cache_control_field(headers));
}

}  // namespace cachecar
