#include "router/exchange.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "admin/metrics.h"
#include "cache/cache_control.h"
#include "cache/cache_status_field.h"
#include "cache/cache_store.h"
#include "cache/cacheability.h"
#include "cache/near_tracking.h"
#include "cache/scripts.h"
#include "cache/surrogate_keys.h"
#include "cache/vary.h"
#include "http/byte_range.h"
#include "http/error_page.h"
#include "http/headers.h"
#include "http/writer.h"
#include "log/logging.h"
#include "ratelimit/client_identity.h"
#include "router/admission.h"
#include "router/background_refresh.h"
#include "router/session_touches.h"
#include "upstream/pool.h"
#include "uv/unix_clock.h"

namespace cachecar {
namespace {

// The Redis call of a variant's lookup (the stages' batch has tag 0).
constexpr uint64_t kVariantLookupTag = 1;
// The second batch of a request limited or cached as its session's user.
constexpr uint64_t kUserStagesTag = 2;

// WorkerContext::response_scratch's capacity worth keeping between hits.
constexpr size_t kMaxKeptScratch = 64 * 1024;

double elapsed_ms(uint64_t from_ns, uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

// An exchange lives for one request and is larger than glibc's per-thread cache serves (1032
// bytes), so each one came from the arena's bins: about a thousand instructions a request,
// on a hit path of a few thousand (issue 14). Each worker thread keeps the blocks of the
// exchanges it freed last; a burst beyond kKept goes back to malloc. Under AddressSanitizer
// none is kept, so that a use of a freed exchange is still caught.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHECAR_ADDRESS_SANITIZER 1  // clang's spelling; GCC defines __SANITIZE_ADDRESS__
#endif
#endif

class ExchangeBlocks {
 public:
#if defined(__SANITIZE_ADDRESS__) || defined(CACHECAR_ADDRESS_SANITIZER)
  static constexpr size_t kKept = 0;
#else
  static constexpr size_t kKept = 64;
#endif

  ExchangeBlocks() = default;
  ExchangeBlocks(const ExchangeBlocks&) = delete;
  ExchangeBlocks& operator=(const ExchangeBlocks&) = delete;
  ~ExchangeBlocks() {
    while (count_ > 0) {
      ::operator delete(blocks_[--count_]);
    }
  }

  // Every block is sizeof(Exchange): the class is final.
  void* take(size_t size) { return count_ > 0 ? blocks_[--count_] : ::operator new(size); }
  void give(void* block) {
    if (count_ < kKept) {
      blocks_[count_++] = block;
    } else {
      ::operator delete(block);
    }
  }

 private:
  void* blocks_[kKept > 0 ? kKept : 1] = {};
  size_t count_ = 0;
};

thread_local ExchangeBlocks exchange_blocks;

}  // namespace

void* Exchange::operator new(size_t size) { return exchange_blocks.take(size); }

void Exchange::operator delete(void* block) { exchange_blocks.give(block); }

Exchange::Exchange(WorkerContext& context, ClientSession& client, RequestHead head)
    : context_(context),
      client_(client),
      config_(context.config),
      head_(std::move(head)),
      method_(head_.method),
      started_ns_(uv_hrtime()),
      invalidation_(*context.cache, plan_, *this),
      flight_(*context.coalescer, *this) {}

Exchange::~Exchange() {
  if (redis_call_ != nullptr) {
    context_.cache->redis().cancel(redis_call_);
  }
  if (upstream_ != nullptr) {
    upstream_->detach();
  }
  const bool finished = phase_ == Phase::Done;
  AccessRecord record;
  record.client = client_.peer_address();
  record.method = method_;
  record.target = head_.target;
  // 499, as nginx logs it: the client went away before its response was complete.
  record.status = finished ? status_ : 499;
  record.bytes = body_bytes_sent_;
  record.upstream_ms =
      upstream_head_ns_ != 0 ? elapsed_ms(upstream_started_ns_, upstream_head_ns_) : -1;
  record.total_ms = elapsed_ms(started_ns_, uv_hrtime());
  record.cache = cache_status_;
  if (session_.user()) {
    record.user = *session_.user();
  }
  log_access(record);

  WorkerMetrics& metrics = *context_.metrics;
  metrics.record_request(method_, record.status, cache_status_, record.total_ms / 1000);
  if (upstream_head_ns_ != 0) {
    metrics.upstream_duration.observe(record.upstream_ms / 1000);
  }
  // flight_ goes with the members: a follower leaves, a leader abandons.
}

void Exchange::answered_by_connection(int status, uint64_t body_bytes) {
  status_ = status;
  body_bytes_sent_ = body_bytes;
  phase_ = Phase::Done;
}

// ---------------------------------------------------------------------------------------------
// Stages

void Exchange::start() {
  if (auto refusal = admit_request(head_, *config_)) {
    refuse(*refusal);
    return;
  }
  plan_request(head_, *config_, plan_);
  client_wants_body_ = method_ != "HEAD";
  client_ip_ =
      resolve_client(client_.peer_ip(), head_.headers, config_->rate_limit.trusted_proxies);
  started_unix_ms_ = unix_now_ms();

  const RouteConfig* route = plan_.route;
  const bool per_user_lookup =
      route != nullptr && route->per_user && plan_.action == CacheAction::Lookup;
  const bool user_decides = per_user_lookup || rate_limit_by_user(*config_, route);
  session_.begin(*config_, route, head_.headers, user_decides);
  if (session_.has_signed_cookie() && plan_.action == CacheAction::Lookup &&
      (route == nullptr || !(route->shared || route->per_user))) {
    // A signed-in request's answer may be its user's alone: served from the cache and stored
    // only where the route says its answers are the same for everyone, or kept per user.
    plan_.action = CacheAction::Bypass;
    plan_.reason = "a session cookie";
  }
  if (plan_.http_semantics) {
    vary_request_ = head_.headers;
    const std::string client_address(client_.peer_address());
    prepare_upstream_request_headers(vary_request_, ForwardingInfo{client_address, "http"});
    // A client's own user header can select no variant (what goes upstream has it removed).
    vary_request_.remove(config_->session.user_header);
  }
  // A signed-in request counted or cached as its user: those stages wait for the session.
  awaiting_user_ = user_decides && session_.reads_session();
  if (!awaiting_user_) {
    begin_client_stages(nullptr);
  }
  RedisBatch batch;
  if (context_.cache->available()) {
    limit_.add_commands(batch);
    session_.add_commands(batch);
    lookup_.add_commands(batch);
  }
  if (!batch.empty()) {
    // Every stage's commands travel together: one round trip for all of them.
    redis_call_ = context_.cache->redis().submit(batch.take(), *this, 0);
    if (redis_call_ != nullptr) {
      phase_ = Phase::Checking;
      return;
    }
  }
  // Redis is known to be down: no request waits for it, and each stage decides without it.
  on_stages_done({});
}

void Exchange::begin_client_stages(const std::string* user) {
  limit_.begin(*config_, plan_.route, client_ip_, started_unix_ms_, context_.limiter, user);
  NearCache* near = context_.near != nullptr ? context_.near->usable() : nullptr;
  if (plan_.action == CacheAction::Lookup && plan_.route != nullptr && plan_.route->per_user &&
      session_.has_signed_cookie()) {
    if (user == nullptr) {
      // Redis could not say whose session this is, or it names nobody: an answer the app
      // may still tailor to the session is not one to share with anonymous requests.
      plan_.action = CacheAction::Bypass;
      plan_.reason = "a session cookie without a known user";
    } else {
      plan_ = per_user_plan(plan_, *user, config_->cache.key_prefix);
      // Near-cache tracking follows the route keys' prefixes, which a user's key does not
      // start with: another replica's write would never reach such an entry.
      near = nullptr;
    }
  }
  lookup_.begin(near, uv_now(context_.loop), started_unix_ms_, head_.headers, config_->cache);
}

void Exchange::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  redis_call_ = nullptr;
  switch (tag) {
    case kVariantLookupTag:
      on_lookup_done(replies);
      return;
    case kUserStagesTag:
      on_user_stages_done(replies);
      return;
    default:
      on_stages_done(replies);
  }
}

// `replies` is the whole batch's, or empty when Redis was not asked or did not answer.
void Exchange::on_stages_done(const std::vector<RedisReplyPtr>& replies) {
  if (auto refusal = limit_.finish(replies, *config_, *context_.metrics)) {
    refuse(*refusal);
    return;
  }
  if (auto refusal = session_.finish(replies, *context_.metrics)) {
    refuse(*refusal);
    return;
  }
  if (awaiting_user_) {
    check_as_user();
    return;
  }
  after_checks(replies);
}

// The user is known only once the session is read: a second round trip, for signed-in
// requests whose limit or cache entry is their user's alone.
void Exchange::check_as_user() {
  awaiting_user_ = false;
  if (session_.unavailable() &&
      rate_limit_key_for(*config_, plan_.route) == RateLimitKey::SessionUser &&
      config_->rate_limit.deny_on_redis_error) {
    // Without the user there is no counter to charge, and the limiter fails closed.
    refuse(Refusal{503, "rate limiter unavailable", false});
    return;
  }
  begin_client_stages(session_.user() ? &*session_.user() : nullptr);
  RedisBatch batch;
  if (context_.cache->available()) {
    limit_.add_commands(batch);
    lookup_.add_commands(batch);
  }
  if (!batch.empty()) {
    redis_call_ = context_.cache->redis().submit(batch.take(), *this, kUserStagesTag);
    if (redis_call_ != nullptr) {
      return;
    }
  }
  on_user_stages_done({});
}

void Exchange::on_user_stages_done(const std::vector<RedisReplyPtr>& replies) {
  if (auto refusal = limit_.finish(replies, *config_, *context_.metrics)) {
    refuse(*refusal);
    return;
  }
  after_checks(replies);
}

void Exchange::after_checks(const std::vector<RedisReplyPtr>& replies) {
  switch (invalidation_.begin(*config_)) {
    case WriteInvalidation::Start::Forward:
      break;
    case WriteInvalidation::Start::Wait:
      phase_ = Phase::Fencing;
      return;
    case WriteInvalidation::Start::Refuse:
      on_fence_done(false);
      return;
  }
  if (!lookup_.wanted()) {
    forward(false);  // nothing to look up: BYPASS
    return;
  }
  on_lookup_done(replies);
}

void Exchange::on_lookup_done(const std::vector<RedisReplyPtr>& replies) {
  // Answered within start() (a near-cache hit, or Redis down): the clock read there is now.
  const int64_t now_unix_ms = phase_ == Phase::Admitting ? started_unix_ms_ : unix_now_ms();
  LookupResult lookup =
      lookup_.finish(replies, now_unix_ms, uv_now(context_.loop), context_.cache->journal());
  if (lookup.kind != LookupResult::Kind::Miss && lookup.kind != LookupResult::Kind::Varies &&
      plan_.http_semantics) {
    fresh_for_ = lookup.http.fresh_for;
  }
  switch (lookup.kind) {
    case LookupResult::Kind::Hit:
      cache_status_ = CacheStatus::Hit;
      touch_session();
      refresh_in_background(lookup);
      serve_cached(lookup.view(), lookup.age_seconds);  // while `replies` still hold the entry
      return;
    case LookupResult::Kind::NotModified:
      cache_status_ = CacheStatus::Hit;
      touch_session();
      refresh_in_background(lookup);
      serve_not_modified(lookup.view(), lookup.age_seconds);
      return;
    case LookupResult::Kind::Stale:
      stored_copy_.keep(lookup.view(), lookup.http);
      forwarded_because_ = lookup.http.asked_by_request ? "request" : "stale";
      break;
    case LookupResult::Kind::Varies:
      look_up_variant(lookup.vary);
      return;
    case LookupResult::Kind::Miss:
      break;
  }
  if (plan_.http_semantics && parse_request_cache_control(head_.headers).only_if_cached) {
    // RFC 9111 §5.2.1.7: nothing stored may answer, and the origin must not be asked.
    respond_error(504, "not cached (only-if-cached)");
    return;
  }
  lookup_ms_ = uv_now(context_.loop);
  seen_epoch_ = lookup.epoch;
  fill_lookup_unix_ms_ = tag_check_lookup_ms(started_unix_ms_, lookup.after_purge_ms);
  miss(std::move(lookup.seen_guard));
}

void Exchange::touch_session() {
  if (auto touch = session_.touch_command()) {
    context_.touches->touch(std::move(*touch));
  }
}

void Exchange::refresh_in_background(const LookupResult& lookup) {
  if (lookup.refresh && lookup.seen_guard) {
    context_.refreshes->start(config_, plan_, lookup_.key(), head_, vary_request_,
                              client_.peer_address(), lookup.view(), lookup.http,
                              *lookup.seen_guard, lookup.epoch, session_.upstream_user());
  }
}

void Exchange::look_up_variant(const VaryFields& vary) {
  lookup_.begin_variant(vary, vary_request_);
  forwarded_because_ = "vary-miss";  // unless the variant is found
  RedisBatch batch;
  lookup_.add_commands(batch);
  redis_call_ = context_.cache->redis().submit(batch.take(), *this, kVariantLookupTag);
  if (redis_call_ != nullptr) {
    phase_ = Phase::Checking;
    return;
  }
  on_lookup_done({});
}

void Exchange::refuse(const Refusal& refusal) {
  if (refusal.close_connection) {
    head_.keep_alive = false;  // a malformed request: answer, then close
  }
  respond_error(refusal.status, refusal.reason);
}

// ---------------------------------------------------------------------------------------------
// Cache

void Exchange::miss(std::optional<std::string> seen_guard) {
  seen_guard_ = std::move(seen_guard);
  if (!seen_guard_) {
    // Without the guard nothing says which writes this miss came after: fetch alone, and
    // store nothing.
    cache_status_ = CacheStatus::Bypass;
    forward(false);
    return;
  }
  cache_status_ = CacheStatus::Miss;
  // Only misses that saw the same guard and epoch share a fetch. One that looked up after a
  // write (the guard moved, or the epoch did for a write the journal could not name) must not
  // be answered by a fetch that began before it: that answer may predate the write the client
  // has already seen confirmed.
  std::string flight_key = lookup_.key();
  flight_key += '\0';
  flight_key += *seen_guard_;
  flight_key += '\0';
  flight_key += std::to_string(seen_epoch_);
  if (flight_.join(std::move(flight_key)) == Flight::Role::Follower) {
    phase_ = Phase::Following;
    return;
  }
  forward(false);
}

void Exchange::serve_cached(const CachedView& response, int64_t age_seconds) {
  // Before status_ becomes the stored one: Cache-Status tells the upstream's.
  std::string extra_lines;
  if (config_->cache.cache_status() != CacheStatusField::Off) {
    extra_lines.assign(limit_.header_lines());
    extra_lines += "Cache-Status: ";
    extra_lines += cache_status_field();
    extra_lines += "\r\n";
  }
  std::string ranged_lines;
  CachedView view = response;
  if (plan_.byte_range) {
    const RangedView ranged =
        cut_to_range(view.status, view.head_lines, view.body, head_, ranged_lines);
    view.status = ranged.status;
    view.head_lines = ranged.head_lines;
    view.body = ranged.body;
  }
  status_ = view.status;
  keep_alive_ = keep_alive_now();
  HitFraming framing;
  framing.age_seconds = age_seconds;
  framing.x_cache = x_cache_value(cache_status_);
  framing.keep_alive = keep_alive_;
  framing.head_only = !client_wants_body_;
  framing.extra_headers = extra_lines.empty() ? limit_.header_lines() : extra_lines;
  std::string& out = context_.response_scratch;
  out.clear();
  write_cached_response(view, framing, out);
  body_bytes_sent_ = client_wants_body_ ? view.body.size() : 0;
  client_.send_copy(out);
  if (out.capacity() > kMaxKeptScratch) {
    std::string().swap(out);  // a large object's bytes are not kept for the next small hit
  }
  finish(keep_alive_);
}

void Exchange::serve_not_modified(const CachedView& response, int64_t age_seconds) {
  // The body stays in the view so that Content-Length says what a 200 would have carried
  // (RFC 9110 §8.6); none is sent.
  const std::string lines = not_modified_lines(response.head_lines);
  CachedView not_modified = response;
  not_modified.status = 304;
  not_modified.head_lines = lines;
  client_wants_body_ = false;
  serve_cached(not_modified, age_seconds);
}

void Exchange::answer_from_copy() {
  const int64_t now_ms = unix_now_ms();
  const std::shared_ptr<const CachedResponse> copy = stored_copy_.response();
  if (stored_copy_.use() == StoredCopy::Use::Confirmed) {
    cache_status_ = CacheStatus::Revalidated;
    if (stored_copy_.refreshed_storable()) {
      store_and_land(copy, stored_copy_.refreshed_ttl());
    } else {
      flight_.abandon();  // never share what may not be stored
    }
  } else {
    cache_status_ = CacheStatus::Stale;
    flight_.abandon();  // the followers ask the upstream themselves
    touch_session();    // the app, failing, renewed nothing
  }
  const int64_t age = stored_copy_.age(now_ms / 1000);
  if (stored_copy_.use() == StoredCopy::Use::Confirmed && stored_copy_.client_has_it()) {
    serve_not_modified(copy->view(), age);
  } else {
    serve_cached(copy->view(), age);
  }
}

bool Exchange::copy_stands_in_for_failure() {
  if (response_started() || !stored_copy_.stands_in_for_failure(unix_now_ms() / 1000,
                                                                 config_->cache)) {
    return false;
  }
  answer_from_copy();
  return true;
}

std::string Exchange::cache_status_field() const {
  CacheStatusReport report;
  switch (cache_status_) {
    case CacheStatus::Hit:
      report.hit = true;
      break;
    case CacheStatus::Coalesced:
      report.fwd = forwarded_because_;
      report.collapsed = true;
      break;
    case CacheStatus::Bypass:
    case CacheStatus::None:
      report.fwd = "bypass";
      break;
    case CacheStatus::Stale:
      report.fwd = forwarded_because_;
      report.detail = "stale-if-error";
      break;
    case CacheStatus::Miss:
    case CacheStatus::Revalidated:
      report.fwd = forwarded_because_;
      report.stored = recording_.recording() ||
                      (cache_status_ == CacheStatus::Revalidated && stored_copy_.refreshed_storable());
      break;
  }
  if (!report.hit && upstream_head_ns_ != 0) {
    report.fwd_status = cache_status_ == CacheStatus::Revalidated ? 304 : status_;
  }
  report.ttl = fresh_for_;
  if (config_->cache.cache_status() == CacheStatusField::WithKey &&
      plan_.action == CacheAction::Lookup) {
    report.key = plan_.key;
  }
  return cache_status_value(report);
}

void Exchange::on_flight_landed(const std::shared_ptr<const CachedResponse>& response) {
  if (plan_.http_semantics) {
    const VaryFields vary = parse_vary(parse_head_lines(response->head_lines));
    if (!vary.names.empty() &&
        variant_selector(vary, vary_request_) != response->variant_selector) {
      on_flight_abandoned();  // another variant than this request selects
      return;
    }
  }
  cache_status_ = CacheStatus::Coalesced;
  touch_session();  // the app saw the leader's request, not this one
  // Mode http backdates the stored time by the age the response arrived with.
  const int64_t age_seconds =
      plan_.http_semantics ? std::max<int64_t>(0, unix_now_ms() - response->stored_at_ms) / 1000
                           : 0;
  serve_cached(response->view(), age_seconds);
}

void Exchange::on_flight_abandoned() {
  cache_status_ = CacheStatus::Bypass;  // the leader's response could not be shared: fetch alone
  forward(false);
}

void Exchange::begin_recording(const ResponseHead& head) {
  const StoreDecision decision = decide_storage(head, plan_, head_.headers, config_->cache,
                                                started_unix_ms_ / 1000, unix_now_ms() / 1000);
  if (!decision.store) {
    spdlog::debug("{} {}: not stored: {}", method_, head_.target, decision.reason);
    cache_status_ = CacheStatus::Bypass;
    flight_.abandon();  // never share what may not be stored
    return;
  }
  if (context_.cache->fills_failing()) {
    cache_status_ = CacheStatus::Bypass;  // still tried, in case Redis has recovered
  }
  recording_.begin(head.status, stored_head_lines(head.headers), decision.ttl,
                   config_->cache.max_object_size, decision.initial_age * 1000);
  if (plan_.http_semantics) {
    recording_.set_variant_selector(variant_selector(parse_vary(head.headers), vary_request_));
  }
}

// The leader's response is complete and shareable: store it (when the lookup's guard allows)
// and answer the followers from it.
void Exchange::finish_fill() {
  auto response = recording_.finish(unix_now_ms());
  if (response == nullptr) {
    flight_.abandon();
    return;
  }
  store_and_land(std::move(response), recording_.ttl());
}

void Exchange::store_and_land(std::shared_ptr<const CachedResponse> response, Duration ttl) {
  const bool fresh_enough =
      uv_now(context_.loop) - lookup_ms_ < static_cast<uint64_t>(kMaxFillAge.count());
  if (seen_guard_ && fresh_enough && context_.cache->available()) {
    context_.cache->store_response(plan_, vary_request_, *seen_guard_, seen_epoch_, *response, ttl,
                                   config_->cache.key_prefix, fill_lookup_unix_ms_);
  }
  flight_.land(response);
}

void Exchange::on_fence_done(bool fenced) {
  if (fenced) {
    forward(false);
    return;
  }
  // Forwarding now could let another replica serve the old entry after this write: refused
  // before the upstream sees it, so the client may safely retry.
  context_.metrics->writes_rejected.add();
  respond_error(503, "cache unavailable: write not forwarded");
}

void Exchange::on_invalidation_done() { release_held_response(); }

void Exchange::release_held_response() {
  if (phase_ != Phase::Holding) {
    return;
  }
  phase_ = Phase::Responding;
  client_.send(std::exchange(held_, {}));
  if (upstream_ != nullptr && upstream_paused_ && !client_.send_congested()) {
    upstream_paused_ = false;
    upstream_->resume_reading();
  }
  if (completed_while_holding_) {
    finish_upstream_response();
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream

void Exchange::forward(bool retry) {
  phase_ = Phase::Forwarding;
  if (upstream_head_.empty()) {
    if (method_ == "HEAD" && cache_status_ == CacheStatus::Miss) {
      // nginx's proxy_cache_convert_head: fetch the body once so the miss can fill the cache;
      // the HEAD client still gets the head only.
      head_.method = "GET";
    }
    stored_copy_.ask_about_copy(head_.headers);
    // A range is asked for the whole response, to be stored (the client may be sent all of it,
    // RFC 9110 §14.2); the request keeps it, to cut what the cache answers.
    std::vector<Header> range_fields;
    if (plan_.byte_range) {
      for (const Header& field : head_.headers.list()) {
        if (iequals(field.name, "Range") || iequals(field.name, "If-Range")) {
          range_fields.push_back(field);
        }
      }
      head_.headers.remove("Range");
      head_.headers.remove("If-Range");
    }
    const std::string client_address(client_.peer_address());
    prepare_upstream_request_headers(head_.headers, ForwardingInfo{client_address, "http"});
    // After the hop-by-hop fields went: a client cannot have it removed by naming it in
    // Connection either.
    session_.prepare_upstream_request(head_.headers, *config_);
    const std::string& prefix = config_->upstream.url.path_prefix;
    const std::string& target =
        plan_.upstream_target.empty() ? head_.target : plan_.upstream_target;
    write_request_head(head_, prefix.empty() ? target : prefix + target, upstream_head_);
    for (Header& field : range_fields) {
      head_.headers.add(std::move(field.name), std::move(field.value));
    }
  }
  upstream_ = context_.upstream->acquire(retry);
  if (upstream_ == nullptr) {
    context_.metrics->upstream_errors[static_cast<size_t>(UpstreamError::Refused)].add();
    if (copy_stands_in_for_failure()) {
      return;
    }
    respond_error(502, "upstream unavailable");
    return;
  }
  upstream_->attach(*this, head_.method == "HEAD");
  if (upstream_started_ns_ == 0) {
    upstream_started_ns_ = uv_hrtime();
  }
  upstream_->send(upstream_head_);
  invalidation_.on_forwarded();
  if (retry && !body_.replay().empty()) {
    upstream_->send(body_.replay());  // what the failed connection was sent
  }
  if (body_.holding()) {
    send_to_upstream(body_.take_held());
  }
  if (upstream_ == nullptr) {
    return;
  }
  if (client_paused_for_upstream_) {
    client_paused_for_upstream_ = false;
    if (!upstream_->congested()) {
      client_.resume_reading();
    }
  }
  if (request_complete_) {
    upstream_->finish_request();
  }
}

void Exchange::send_to_upstream(std::string bytes) {
  if (upstream_ == nullptr) {
    // The stages are still out (or a flight is followed): keep the bytes for the upstream.
    if (body_.hold(bytes)) {
      client_paused_for_upstream_ = true;
      client_.pause_reading();
    }
    return;
  }
  body_.sent(bytes);
  upstream_->send(std::move(bytes));
  if (upstream_ != nullptr && upstream_->congested()) {
    client_.pause_reading();
  }
}

void Exchange::on_request_body(std::string_view chunk) {
  if (phase_ == Phase::Done) {
    return;  // answered already (e.g. an early error); the connection closes after it
  }
  std::string framed;
  if (head_.framing == BodyFraming::Chunked) {
    write_chunk(chunk, framed);
  } else {
    framed.assign(chunk);
  }
  send_to_upstream(std::move(framed));
}

void Exchange::on_request_complete() {
  request_complete_ = true;
  if (phase_ == Phase::Done) {
    return;
  }
  if (head_.framing == BodyFraming::Chunked) {
    std::string last;
    write_last_chunk(last);
    send_to_upstream(std::move(last));
  }
  if (upstream_ != nullptr) {
    upstream_->finish_request();
  }
}

void Exchange::on_client_drained() {
  if (upstream_paused_ && upstream_ != nullptr && phase_ != Phase::Holding) {
    upstream_paused_ = false;
    upstream_->resume_reading();
  }
}

void Exchange::on_upstream_drained() { client_.resume_reading(); }

// RFC 9110 §15.2: a proxy forwards 1xx responses it did not ask for, except to an HTTP/1.0
// client. 100 Continue is not one of them: cachecar answers a client's Expect itself. An
// interim response is never stored, and none of its fields reach the final response. They
// are advice (a hint, a sign of life): past a few, or toward a client that is not reading,
// the rest are dropped rather than queued without bound.
void Exchange::on_upstream_interim(const ResponseHead& head) {
  static constexpr uint8_t kMaxInterimRelayed = 8;
  if (head.status == 100 || !head_.version.at_least_1_1() || phase_ != Phase::Forwarding ||
      interim_relayed_ >= kMaxInterimRelayed || client_.send_congested()) {
    return;
  }
  ++interim_relayed_;
  Headers headers = head.headers;
  remove_hop_by_hop(headers);
  std::string out;
  write_response_head(head.status, head.reason, headers, ResponseFraming{}, out);
  client_.send(std::move(out));
}

void Exchange::on_upstream_head(ResponseHead& head) {
  upstream_head_ns_ = uv_hrtime();
  status_ = head.status;
  body_.stop_replay();

  prepare_client_response_headers(head.headers);
  std::vector<std::string> tags = take_tags(head.headers, config_->cache.tags);
  if (stored_copy_.absorbs(head, head_.headers, started_unix_ms_ / 1000, unix_now_ms() / 1000,
                           config_->cache)) {
    stored_copy_.tag_confirmed(std::move(tags));
    return;  // the stored copy answers when this response is complete
  }
  if (!limit_.header_lines().empty()) {
    remove_rate_limit_fields(head.headers);
  }
  if (cache_status_ == CacheStatus::Miss) {
    begin_recording(head);
    recording_.set_tags(std::move(tags));
  }
  head.headers.add("X-Cache", std::string(x_cache_value(cache_status_)));
  if (config_->cache.cache_status() != CacheStatusField::Off) {
    head.headers.add("Cache-Status", cache_status_field());
  }

  // A response that starts before the request body was read whole leaves unread bytes on the
  // connection: close it afterwards rather than parse them as a request.
  keep_alive_ = keep_alive_now();

  ClientFraming client = frame_for_client(head, head_.version, client_wants_body_, keep_alive_);
  client_chunked_ = client.chunked;
  keep_alive_ = client.framing.keep_alive;
  if (client.announce_keep_alive) {
    head.headers.add("Connection", "keep-alive");
  }
  client.framing.extra_lines = limit_.header_lines();

  std::string out;
  out.reserve(256 + head.headers.size() * 48);
  write_response_head(head.status, head.reason, head.headers, client.framing, out);
  phase_ = Phase::Responding;

  if (plan_.action == CacheAction::Invalidate) {
    add_response_invalidations(head, head_, *config_, plan_);
  }
  if (invalidation_.after_response(head.status, tags, config_->cache.key_prefix)) {
    // The next read must not see the old entry: the answer waits until Redis confirms (or
    // the keys are journaled).
    phase_ = Phase::Holding;
    held_ = std::move(out);
    if (upstream_ != nullptr) {
      upstream_paused_ = true;
      upstream_->pause_reading();
    }
    return;
  }
  client_.send(std::move(out));
}

void Exchange::on_upstream_body(std::string_view chunk) {
  if (stored_copy_.use() != StoredCopy::Use::None) {
    return;  // absorbed: the stored copy answers
  }
  if (recording_.recording() && !recording_.add_body(chunk)) {
    flight_.abandon();  // too large to store, and so to share
  }
  if (!client_wants_body_) {
    return;
  }
  body_bytes_sent_ += chunk.size();
  std::string framed;
  if (client_chunked_) {
    write_chunk(chunk, framed);
  } else {
    framed.assign(chunk);
  }
  send_response_bytes(std::move(framed));
}

void Exchange::send_response_bytes(std::string bytes) {
  if (phase_ == Phase::Holding) {
    held_ += bytes;
    return;
  }
  client_.send(std::move(bytes));
  if (upstream_ != nullptr && !upstream_paused_ && client_.send_congested()) {
    upstream_paused_ = true;
    upstream_->pause_reading();
  }
}

void Exchange::on_upstream_complete() {
  upstream_ = nullptr;
  if (stored_copy_.use() != StoredCopy::Use::None) {
    answer_from_copy();
    return;
  }
  finish_fill();
  if (phase_ == Phase::Holding) {
    completed_while_holding_ = true;
    return;
  }
  finish_upstream_response();
}

void Exchange::finish_upstream_response() {
  if (client_chunked_) {
    std::string last;
    write_last_chunk(last);
    client_.send(std::move(last));
  }
  finish(keep_alive_);
}

void Exchange::on_upstream_error(UpstreamError error, bool retryable) {
  upstream_ = nullptr;
  recording_.cancel();
  const bool will_retry = !response_started() && retryable && !retried_ && body_.replayable() &&
                          is_idempotent_method(head_.method);
  if (!will_retry) {
    // A retried pooled connection is routine; only what the client may notice is counted.
    context_.metrics->upstream_errors[static_cast<size_t>(error)].add();
  }
  if (response_started()) {
    flight_.abandon();
    spdlog::warn("{} {}: upstream failed mid-response ({}); closing the client connection", method_,
                 head_.target, label(error));
    client_.abort_response();
    return;
  }
  if (will_retry) {
    // A pooled connection the upstream had closed: the request never reached it.
    retried_ = true;
    spdlog::debug("{} {}: pooled upstream connection closed; retrying on a new one", method_,
                  head_.target);
    forward(true);
    return;
  }
  if (copy_stands_in_for_failure()) {
    return;
  }
  flight_.abandon();
  respond_error(status_for(error), describe(error));
}

// ---------------------------------------------------------------------------------------------
// Client

bool Exchange::keep_alive_now() const {
  // A request without a body is complete once its head is: an answer given from start()
  // (421, 503 with Redis known down) need not cost the connection.
  return head_.keep_alive && client_.may_keep_alive() && (request_complete_ || !head_.has_body());
}

void Exchange::respond_error(int status, std::string_view message) {
  flight_.abandon();
  invalidation_.after_no_response();  // cachecar answers: the upstream's answer never came
  status_ = status;
  keep_alive_ = keep_alive_now();
  std::string bytes =
      error_response(status, message, keep_alive_, limit_.header_lines(), !client_wants_body_);
  body_bytes_sent_ = response_body_size(bytes);
  client_.send(std::move(bytes));
  finish(keep_alive_);
}

void Exchange::finish(bool keep_alive) {
  phase_ = Phase::Done;
  client_.finish_response(keep_alive);
}

}  // namespace cachecar
