#include "cache/http_semantics.h"

#include <algorithm>
#include <chrono>

#include "cache/freshness.h"
#include "cache/vary.h"
#include "http/chars.h"

namespace cachecar {
namespace {

int64_t seconds(Duration duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

bool has_validator(const Headers& headers) {
  return headers.contains("ETag") || headers.contains("Last-Modified");
}

// §5.2.2.3: the statuses whose caching rules cachecar implements, so that must-understand may
// override no-store for them.
bool understood(int status) {
  return heuristically_cacheable(status) || status == 302 || status == 303 || status == 307;
}

// RFC 9110 §8.8.3.2: W/"x" and "x" are weakly equal.
std::string_view opaque_tag(std::string_view tag) {
  tag = trim_ows(tag);
  if (tag.starts_with("W/")) {
    tag.remove_prefix(2);
  }
  return tag;
}

bool none_match_lists(std::string_view list, std::string_view etag) {
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view member = trim_ows(list.substr(0, comma));
    if (member == "*" || (!member.empty() && opaque_tag(member) == opaque_tag(etag))) {
      return true;
    }
    if (comma == std::string_view::npos) {
      return false;
    }
    list.remove_prefix(comma + 1);
  }
}

bool describes_the_body(std::string_view name) {
  // §3.2: a 304 does not change what the stored body is, nor its length or encoding.
  return iequals(name, "Content-Length") || iequals(name, "Content-Encoding") ||
         iequals(name, "Content-Range") || iequals(name, "Transfer-Encoding");
}

}  // namespace

HttpStoreDecision decide_http_storage(const ResponseHead& response, const Headers& request,
                                      const Config::Cache& cache, int64_t request_time,
                                      int64_t response_time) {
  HttpStoreDecision no;
  const int status = response.status;
  if (status < 200 || status == 206 || status == 304 || status > 599) {
    no.reason = "status not stored (partial, a validation, or not final)";
    return no;
  }
  const ResponseCacheControl control = effective_response_cache_control(response.headers);
  if (parse_request_cache_control(request).no_store) {
    no.reason = "request Cache-Control no-store";
    return no;
  }
  if (control.must_understand ? !understood(status) : control.no_store) {
    no.reason = "Cache-Control no-store";
    return no;
  }
  if (control.is_private) {
    no.reason = "Cache-Control private";
    return no;
  }
  if (request.contains("Authorization") &&
      !(control.is_public || control.s_maxage || control.must_revalidate)) {
    no.reason = "Authorization without public, s-maxage or must-revalidate (RFC 9111 3.5)";
    return no;
  }
  if (response.headers.contains("Set-Cookie")) {
    no.reason = "Set-Cookie";
    return no;
  }
  const VaryFields vary = parse_vary(response.headers);
  if (vary.any) {
    no.reason = "Vary: *";  // no request can be shown to select it (§4.1)
    return no;
  }
  if (!vary_names_valid(vary)) {
    no.reason = "Vary names something that is not a field name";
    return no;
  }
  if (response.framing == BodyFraming::ContentLength &&
      response.content_length > cache.max_object_size) {
    no.reason = "larger than cache.max_object_size";
    return no;
  }
  const bool validator = has_validator(response.headers);
  std::optional<int64_t> lifetime = freshness_lifetime(status, control, response.headers,
                                                       response_time, seconds(cache.heuristic_max));
  if (!lifetime) {
    if (!validator || !heuristically_cacheable(status)) {
      no.reason = "no freshness lifetime and no validator";
      return no;
    }
    lifetime = 0;  // kept only to be revalidated
  }
  const int64_t age = initial_age(response.headers, request_time, response_time);
  int64_t stale_use = 0;
  if (control.stale_while_revalidate) {
    stale_use = std::max(stale_use, *control.stale_while_revalidate);
  }
  if (control.stale_if_error) {
    stale_use = std::max(stale_use, *control.stale_if_error);
  } else if (cache.stale_if_error) {
    stale_use = std::max(stale_use, seconds(*cache.stale_if_error));
  }
  if (validator) {
    stale_use = std::max(stale_use, seconds(cache.revalidate_window));
  }
  const int64_t keep = std::max<int64_t>(0, *lifetime - age) + stale_use;
  if (keep <= 0) {
    no.reason = "stale on arrival, and nothing to revalidate it with";
    return no;
  }
  HttpStoreDecision yes;
  yes.store = true;
  yes.initial_age = age;
  yes.ttl = std::min(Duration(std::min(keep, kDeltaSecondsCap) * 1000), cache.max_ttl);
  return yes;
}

Headers parse_head_lines(std::string_view lines) {
  Headers headers;
  while (!lines.empty()) {
    const size_t end = lines.find("\r\n");
    const std::string_view line = lines.substr(0, end);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      headers.add(std::string(line.substr(0, colon)), std::string(trim_ows(line.substr(colon + 1))));
    }
    if (end == std::string_view::npos) {
      break;
    }
    lines.remove_prefix(end + 2);
  }
  return headers;
}

HttpVerdict judge_stored(const CachedView& entry, const Headers& request, int64_t now,
                         const Config::Cache& cache) {
  return judge_stored(entry, parse_head_lines(entry.head_lines), request, now, cache);
}

HttpVerdict judge_stored(const CachedView& entry, const Headers& stored, const Headers& request,
                         int64_t now, const Config::Cache& cache) {
  const ResponseCacheControl control = effective_response_cache_control(stored);
  const RequestCacheControl asked = parse_request_cache_control(request);
  const int64_t stored_at = entry.stored_at_ms / 1000;
  HttpVerdict verdict;
  verdict.validator = has_validator(stored);
  verdict.age = std::max<int64_t>(0, now - stored_at);
  int64_t lifetime =
      freshness_lifetime(entry.status, control, stored, stored_at, seconds(cache.heuristic_max))
          .value_or(0);
  if (entry.stale_since_ms != 0) {
    // A soft purge ended its freshness: from then on it is a stale response like any other,
    // its stale-while-revalidate and stale-if-error windows counted from the purge. The mark
    // has Redis's time; should it be ahead of this clock, the entry is stale from now.
    const int64_t purged_at = std::min(entry.stale_since_ms / 1000, now);
    lifetime = std::min(lifetime, std::max<int64_t>(0, purged_at - stored_at));
  }
  verdict.fresh_for = lifetime - verdict.age;
  switch (servable(lifetime, verdict.age, control, asked)) {
    case Servable::Fresh:
      verdict.kind = HttpVerdict::Kind::Fresh;
      break;
    case Servable::StaleAllowed:
      verdict.kind = HttpVerdict::Kind::StaleAllowed;
      break;
    case Servable::MustValidate:
      verdict.kind = HttpVerdict::Kind::MustValidate;
      // The stored response alone would have been served: the request asked for more.
      verdict.asked_by_request =
          !control.no_cache && verdict.fresh_for > 0 &&
          servable(lifetime, verdict.age, control, RequestCacheControl{}) == Servable::Fresh;
      // A request that asks for nothing fresher may be given the stale entry while it is
      // refreshed.
      if (!verdict.asked_by_request && !asked.no_cache && !asked.max_age && !asked.min_fresh &&
          may_serve_while_revalidating(lifetime, verdict.age, control)) {
        verdict.kind = HttpVerdict::Kind::WhileRevalidating;
      }
      break;
  }
  return verdict;
}

bool client_has_current(const Headers& stored, const Headers& request) {
  if (request.contains("If-None-Match")) {
    const auto etag = stored.get("ETag");
    if (!etag) {
      return false;
    }
    bool matched = false;
    request.for_each("If-None-Match",
                     [&](std::string_view list) { matched = matched || none_match_lists(list, *etag); });
    return matched;
  }
  const auto since = request.get("If-Modified-Since");
  // §4.3.2: without a Last-Modified, the stored response's Date says when it was current.
  auto modified = stored.get("Last-Modified");
  if (!modified) {
    modified = stored.get("Date");
  }
  if (!since || !modified) {
    return false;
  }
  const auto since_time = parse_http_date(trim_ows(*since));
  const auto modified_time = parse_http_date(trim_ows(*modified));
  return since_time && modified_time && *modified_time <= *since_time;
}

std::string not_modified_lines(std::string_view stored_lines) {
  static constexpr std::string_view kKept[] = {
      "Cache-Control", "CDN-Cache-Control", "Cachecar-Cache-Control", "Content-Location", "Date",
      "ETag",          "Expires",           "Last-Modified",          "Vary",
  };
  std::string out;
  while (!stored_lines.empty()) {
    const size_t end = stored_lines.find("\r\n");
    const std::string_view line =
        stored_lines.substr(0, end == std::string_view::npos ? end : end + 2);
    const std::string_view name = line.substr(0, line.find(':'));
    if (std::any_of(std::begin(kKept), std::end(kKept),
                    [name](std::string_view kept) { return iequals(name, kept); })) {
      out += line;
    }
    if (end == std::string_view::npos) {
      break;
    }
    stored_lines.remove_prefix(end + 2);
  }
  return out;
}

void add_validators(const Headers& stored, Headers& request) {
  request.remove("If-None-Match");
  request.remove("If-Modified-Since");
  if (const auto etag = stored.get("ETag")) {
    request.add("If-None-Match", std::string(*etag));
  }
  if (const auto modified = stored.get("Last-Modified")) {
    request.add("If-Modified-Since", std::string(*modified));
  }
}

std::string refreshed_head_lines(std::string_view stored_lines, const Headers& not_modified) {
  Headers merged = parse_head_lines(stored_lines);
  // Each field the 304 names replaces every stored line of that name, in the stored order of
  // first appearance; its new fields follow.
  Headers updates;
  for (const Header& field : not_modified.list()) {
    if (!describes_the_body(field.name)) {
      updates.add(field.name, field.value);
    }
  }
  Headers out;
  for (const Header& field : merged.list()) {
    if (!updates.contains(field.name)) {
      out.add(field.name, field.value);
    }
  }
  for (const Header& field : updates.list()) {
    out.add(field.name, field.value);
  }
  return stored_head_lines(out);
}

}  // namespace cachecar
