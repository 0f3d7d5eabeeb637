// Fuzz target: the RFC 9111 policy of the HTTP cache mode. Each input line is a header field
// ("Name: value") of one response, which is also read as a request's: Cache-Control and its
// targeted fields (and any value as a Structured Dictionary), the HTTP-dates, Age, Vary. Whatever the bytes, the directives stay in range,
// the decisions are made without a crash, an overflow or a negative age, and Vary's names come
// out lower case, sorted and unique. The same fields then go through the storage and serving
// decisions of cache.mode: http (cache/http_semantics.h).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cache/cache_control.h"
#include "cache/envelope.h"
#include "cache/freshness.h"
#include "cache/http_semantics.h"
#include "cache/vary.h"
#include "http/structured_field.h"

namespace cachecar {
namespace {

void check_range(const std::optional<int64_t>& seconds) {
  if (seconds && (*seconds < 0 || *seconds > kDeltaSecondsCap)) {
    std::abort();
  }
}

void run(std::string_view input) {
  Headers headers;
  while (!input.empty()) {
    const size_t newline = input.find('\n');
    const std::string_view line = input.substr(0, newline);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      headers.add(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    }
    if (newline == std::string_view::npos) {
      break;
    }
    input.remove_prefix(newline + 1);
  }
  // Every value read as a Structured Dictionary: what parses has keys of the grammar's
  // alphabet and integers of at most 15 digits (RFC 8941 §3.3.1).
  for (const Header& header : headers.list()) {
    if (const auto members = parse_sf_dictionary(header.value)) {
      for (const SfMember& member : *members) {
        const char first = member.key.empty() ? '\0' : member.key.front();
        if (!((first >= 'a' && first <= 'z') || first == '*') ||
            (member.type == SfType::Integer &&
             (member.integer > 999'999'999'999'999 || member.integer < -999'999'999'999'999))) {
          std::abort();
        }
      }
    }
  }
  const ResponseCacheControl response = effective_response_cache_control(headers);
  for (const auto& seconds : {response.max_age, response.s_maxage, response.stale_while_revalidate,
                              response.stale_if_error}) {
    check_range(seconds);
  }
  const RequestCacheControl request = parse_request_cache_control(headers);
  for (const auto& seconds : {request.max_age, request.min_fresh, request.max_stale}) {
    check_range(seconds);
  }
  constexpr int64_t kNow = 1'800'000'000;
  for (const int status : {200, 302, 404}) {
    const auto lifetime = freshness_lifetime(status, response, headers, kNow, 86'400);
    check_range(lifetime);
    const int64_t initial = initial_age(headers, kNow - 1, kNow);
    if (initial < 0) {
      std::abort();
    }
    const int64_t age = current_age(initial, kNow, kNow + 10);
    (void)servable(lifetime.value_or(0), age, response, request);
    (void)may_serve_while_revalidating(lifetime.value_or(0), age, response);
    (void)may_serve_on_error(lifetime.value_or(0), age, response, 60);
  }
  headers.for_each("Date", [](std::string_view value) { (void)parse_http_date(value); });
  const VaryFields vary = parse_vary(headers);
  for (size_t i = 0; i < vary.names.size(); ++i) {
    const std::string& name = vary.names[i];
    if (name.empty() || (i > 0 && vary.names[i - 1] >= name) ||
        std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      std::abort();
    }
  }
  (void)variant_selector(vary, headers);

  // The decisions of cache.mode: http over the same fields as a response and as a request.
  Config::Cache cache;
  cache.mode = CacheMode::Http;
  cache.stale_if_error = Duration(60'000);
  ResponseHead head;
  head.headers = headers;
  for (const int status : {200, 206, 302, 404, 500}) {
    head.status = status;
    const HttpStoreDecision decision = decide_http_storage(head, headers, cache, kNow - 1, kNow);
    if (decision.store && (decision.ttl <= Duration(0) || decision.ttl > cache.max_ttl ||
                           decision.initial_age < 0)) {
      std::abort();
    }
  }
  const std::string lines = stored_head_lines(headers);
  CachedView entry;
  entry.head_lines = lines;
  entry.stored_at_ms = (kNow - 5) * 1000;
  const HttpVerdict verdict = judge_stored(entry, headers, kNow, cache);
  if (verdict.age < 0) {
    std::abort();
  }
  (void)client_has_current(parse_head_lines(lines), headers);
  (void)not_modified_lines(lines);
  (void)refreshed_head_lines(lines, headers);
  Headers forwarded = headers;
  add_validators(parse_head_lines(lines), forwarded);
  // A vary index read back from Redis may be anything: what decodes must encode to itself.
  if (const auto index = decode_vary_index(lines)) {
    if (encode_vary_index(*index) != lines) {
      std::abort();
    }
  }
  if (!vary.names.empty() && vary_names_valid(vary)) {
    const auto round_trip = decode_vary_index(encode_vary_index(vary));
    if (!round_trip || round_trip->names != vary.names) {
      std::abort();
    }
  }
}

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cachecar::run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
