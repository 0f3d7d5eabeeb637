#include "router/stored_copy.h"

#include <algorithm>
#include <chrono>

#include "cache/freshness.h"

namespace cachecar {

void StoredCopy::keep(const CachedView& entry, const HttpVerdict& verdict) {
  copy_ = std::make_shared<CachedResponse>();
  copy_->status = entry.status;
  copy_->head_lines.assign(entry.head_lines);
  copy_->body.assign(entry.body);
  copy_->stored_at_ms = entry.stored_at_ms;
  verdict_ = verdict;
}

void StoredCopy::ask_about_copy(Headers& request) {
  if (!kept() || !verdict_.validator) {
    return;  // the client's own conditions, if any, go as they are: a 304 is then theirs
  }
  request.for_each("If-None-Match", [this](std::string_view value) {
    client_conditions_.add("If-None-Match", std::string(value));
  });
  request.for_each("If-Modified-Since", [this](std::string_view value) {
    client_conditions_.add("If-Modified-Since", std::string(value));
  });
  add_validators(parse_head_lines(copy_->head_lines), request);
}

bool StoredCopy::absorbs(const ResponseHead& head, const Headers& request, int64_t request_time,
                         int64_t response_time, const Config::Cache& cache) {
  if (!kept()) {
    return false;
  }
  if (head.status == 304 && verdict_.validator) {
    use_ = Use::Confirmed;
    copy_->head_lines = refreshed_head_lines(copy_->head_lines, head.headers);
    ResponseHead refreshed;
    refreshed.status = copy_->status;
    refreshed.headers = parse_head_lines(copy_->head_lines);
    refreshed.framing = BodyFraming::ContentLength;
    refreshed.content_length = copy_->body.size();
    const HttpStoreDecision decision =
        decide_http_storage(refreshed, request, cache, request_time, response_time);
    // The 304's own Age and Date say how old the confirmation is (§4.3.4).
    const int64_t age = initial_age(head.headers, request_time, response_time);
    copy_->stored_at_ms = (response_time - age) * 1000;
    refreshed_storable_ = decision.store;
    refreshed_ttl_ = decision.ttl;
    return true;
  }
  if (head.status >= 500 && may_stand_in(response_time, cache)) {
    use_ = Use::StandingIn;
    return true;
  }
  return false;
}

void StoredCopy::tag_confirmed(std::vector<std::string> tags) {
  if (use_ == Use::Confirmed) {
    copy_->tags = std::move(tags);
  }
}

bool StoredCopy::stands_in_for_failure(int64_t now, const Config::Cache& cache) {
  if (!kept() || !may_stand_in(now, cache)) {
    return false;
  }
  use_ = Use::StandingIn;
  return true;
}

bool StoredCopy::client_has_it() const {
  return !client_conditions_.empty() &&
         client_has_current(parse_head_lines(copy_->head_lines), client_conditions_);
}

int64_t StoredCopy::age(int64_t now) const {
  return std::max<int64_t>(0, now - copy_->stored_at_ms / 1000);
}

bool StoredCopy::may_stand_in(int64_t now, const Config::Cache& cache) const {
  const ResponseCacheControl control =
      effective_response_cache_control(parse_head_lines(copy_->head_lines));
  const int64_t lifetime = verdict_.age + verdict_.fresh_for;
  std::optional<int64_t> configured;
  if (cache.stale_if_error) {
    configured = std::chrono::duration_cast<std::chrono::seconds>(*cache.stale_if_error).count();
  }
  return may_serve_on_error(lifetime, age(now), control, configured);
}

}  // namespace cachecar
