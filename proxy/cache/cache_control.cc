#include "cache/cache_control.h"

#include <algorithm>
#include <charconv>

#include "http/chars.h"
#include "http/structured_field.h"

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

namespace {

// A targeted field's directives (RFC 9213 §2.1): the field is a Dictionary, so one that is
// empty or does not parse is ignored whole (nullopt: as if absent). A directive whose value
// is of the wrong type (max-age="60", no-store=?0) is not consumed, since §2.1 warns that
// coercing one makes caches disagree.
std::optional<ResponseCacheControl> targeted_cache_control(const Headers& headers,
                                                           std::string_view field) {
  std::string value;
  bool any = false;
  headers.for_each(field, [&](std::string_view line) {
    value += any ? ", " : "";
    value += line;
    any = true;
  });
  if (!any) {
    return std::nullopt;
  }
  const auto members = parse_sf_dictionary(value);
  if (!members || members->empty()) {
    return std::nullopt;
  }
  ResponseCacheControl out;
  for (const SfMember& member : *members) {
    const bool flag = member.type == SfType::Boolean && member.boolean;
    // no-cache and private may name fields, as a String: they still apply whole here.
    const bool flag_or_names = flag || member.type == SfType::String;
    const std::optional<int64_t> seconds =
        member.type == SfType::Integer && member.integer >= 0
            ? std::optional<int64_t>(std::min(member.integer, kDeltaSecondsCap))
            : std::nullopt;
    const std::string& name = member.key;
    if (name == "no-store") {
      out.no_store = flag;
    } else if (name == "no-cache") {
      out.no_cache = flag_or_names;
    } else if (name == "private") {
      out.is_private = flag_or_names;
    } else if (name == "public") {
      out.is_public = flag;
    } else if (name == "must-revalidate") {
      out.must_revalidate = flag;
    } else if (name == "proxy-revalidate") {
      out.proxy_revalidate = flag;
    } else if (name == "must-understand") {
      out.must_understand = flag;
    } else if (name == "no-transform") {
      out.no_transform = flag;
    } else if (name == "max-age") {
      out.max_age = seconds;
    } else if (name == "s-maxage") {
      out.s_maxage = seconds;
    } else if (name == "stale-while-revalidate") {
      out.stale_while_revalidate = seconds;
    } else if (name == "stale-if-error") {
      out.stale_if_error = seconds;
    }
  }
  return out;
}

// The field that governs, and its directives: the one choice both public functions report,
// so that they cannot disagree.
struct Governing {
  std::string_view field;
  ResponseCacheControl control;
};
Governing governing(const Headers& headers) {
  for (const std::string_view field : kTargetedFields) {
    if (auto targeted = targeted_cache_control(headers, field)) {
      return {field, *targeted};
    }
  }
  return {"Cache-Control", parse_response_cache_control(headers)};
}

}  // namespace

std::string_view governing_cache_control_field(const Headers& headers) {
  return governing(headers).field;
}

ResponseCacheControl effective_response_cache_control(const Headers& headers) {
  return governing(headers).control;
}

}  // namespace cachecar
