#include "router/exchange.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <iterator>

#include "admin/metrics.h"
#include "cache/cache_store.h"
#include "cache/scripts.h"
#include "http/error_page.h"
#include "http/headers.h"
#include "http/host.h"
#include "http/target.h"
#include "http/writer.h"
#include "log/logging.h"
#include "ratelimit/client_identity.h"
#include "upstream/pool.h"

namespace cachecar {
namespace {

// Element `index` of the lookup's MGET reply, or nullptr when the reply is not that array.
const redisReply* mget_element(const std::vector<RedisReplyPtr>& replies, size_t index) {
  const redisReply* array = replies.empty() ? nullptr : replies[0].get();
  if (array == nullptr || array->type != REDIS_REPLY_ARRAY || array->elements <= index) {
    return nullptr;
  }
  return array->element[index];
}

double elapsed_ms(uint64_t from_ns, uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Exchange::Exchange(WorkerContext& context, ClientSession& client, RequestHead head)
    : context_(context),
      client_(client),
      config_(context.config),
      head_(std::move(head)),
      method_(head_.method),
      started_ns_(uv_hrtime()) {}

Exchange::~Exchange() {
  if (redis_call_ != nullptr) {
    context_.cache->redis().cancel(redis_call_);
  }
  if (following_) {
    context_.coalescer->leave(flight_key_, *this);
  }
  abandon_flight();
  if (upstream_ != nullptr) {
    upstream_->detach();
  }
  AccessRecord record;
  record.client = client_.peer_address();
  record.method = method_;
  record.target = head_.target;
  // 499, as nginx logs it: the client went away before its response was complete.
  record.status = response_finished_ ? status_ : 499;
  record.bytes = body_bytes_sent_;
  record.upstream_ms =
      upstream_head_ns_ != 0 ? elapsed_ms(upstream_started_ns_, upstream_head_ns_) : -1;
  record.total_ms = elapsed_ms(started_ns_, uv_hrtime());
  record.cache = coalesced_ ? std::string_view("COALESCED") : cache_status_;
  log_access(record);

  CacheResult result = CacheResult::Bypass;
  if (coalesced_) {
    result = CacheResult::Coalesced;
  } else if (cache_status_ == "HIT") {
    result = CacheResult::Hit;
  } else if (cache_status_ == "MISS") {
    result = CacheResult::Miss;
  }
  WorkerMetrics& metrics = *context_.metrics;
  metrics.record_request(method_, record.status, result, record.total_ms / 1000);
  if (upstream_head_ns_ != 0) {
    metrics.upstream_duration.observe(record.upstream_ms / 1000);
  }
}

void Exchange::answered_by_connection(int status, uint64_t body_bytes) {
  status_ = status;
  body_bytes_sent_ = body_bytes;
  response_finished_ = true;
}

void Exchange::start() {
  std::string reason;
  auto target = normalize_target(head_.target, reason);
  if (!target) {
    head_.keep_alive = false;  // a malformed request: answer, then close
    respond_error(400, reason);
    return;
  }
  head_.target = std::move(*target);
  const HostCheck host = check_host(head_, config_->hosts);
  if (host.verdict != HostVerdict::Accepted) {
    if (host.verdict == HostVerdict::Malformed) {
      head_.keep_alive = false;
    }
    respond_error(host.verdict == HostVerdict::Malformed ? 400 : 421, host.reason);
    return;
  }
  plan_ = plan_request(head_, *config_);
  client_wants_body_ = method_ != "HEAD";
  const IpAddress client =
      resolve_client(client_.peer_ip(), head_.headers, config_->rate_limit.trusted_proxies);
  limit_ = plan_rate_limit(*config_, plan_.route, client, unix_now_ms());
  std::vector<RedisCommand> commands;
  if (context_.cache->available()) {
    if (limit_) {
      commands.push_back(limiter_command(*limit_));
    }
    if (plan_.action == CacheAction::Lookup) {
      std::vector<RedisCommand> lookup = CacheStore::lookup_commands(plan_);
      std::move(lookup.begin(), lookup.end(), std::back_inserter(commands));
    }
  }
  if (!commands.empty()) {
    // The limiter and the lookup travel together: one round trip for both.
    redis_call_ = context_.cache->redis().submit(std::move(commands), *this, kCheckTag);
    if (redis_call_ != nullptr) {
      return;
    }
  }
  // Redis is known to be down: no request waits for it.
  if (limit_ && !apply_limit(nullptr)) {
    return;
  }
  forward(false);
}

// ---------------------------------------------------------------------------------------------
// Rate limit and cache

void Exchange::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  redis_call_ = nullptr;
  if (tag == kCheckTag) {
    on_check_done(replies);
    return;
  }
  if (replies.empty() || is_error(replies.front().get())) {
    spdlog::warn("{} {}: cache invalidation failed ({}); entries may be stale until their TTL",
                 method_, head_.target,
                 replies.empty() ? std::string_view("Redis unavailable")
                                 : reply_text(replies.front().get()));
  }
  release_held_response();
}

void Exchange::on_check_done(std::vector<RedisReplyPtr>& replies) {
  size_t first_lookup_reply = 0;
  if (limit_) {
    if (!apply_limit(replies.empty() ? nullptr : replies.front().get())) {
      return;
    }
    first_lookup_reply = 1;
  }
  if (plan_.action != CacheAction::Lookup || replies.empty()) {
    forward(false);  // nothing to look up, or Redis failed or timed out: BYPASS
    return;
  }
  std::vector<RedisReplyPtr> lookup;
  std::move(replies.begin() + static_cast<std::ptrdiff_t>(first_lookup_reply), replies.end(),
            std::back_inserter(lookup));
  on_lookup_done(lookup);
}

bool Exchange::apply_limit(const redisReply* reply) {
  const std::optional<LimitDecision> decision = reply ? decide(*limit_, reply) : std::nullopt;
  if (!decision) {
    if (reply != nullptr) {
      spdlog::warn("rate limiter: unexpected answer from Redis ({})",
                   is_error(reply) ? reply_text(reply) : std::string_view("wrong shape"));
    }
    if (config_->rate_limit.deny_on_redis_error) {
      respond_error(503, "rate limiter unavailable");
      return false;
    }
    limit_.reset();  // fail open: no limit, and so no RateLimit headers
    return true;
  }
  rate_header_lines_ = rate_limit_lines(*limit_, *decision);
  if (!decision->allowed) {
    context_.metrics->rate_limited.add();
    respond_error(429, "rate limit exceeded");
    return false;
  }
  return true;
}

void Exchange::on_lookup_done(std::vector<RedisReplyPtr>& replies) {
  int64_t age_seconds = 0;
  if (auto hit = decode_hit(replies, age_seconds)) {
    cache_status_ = "HIT";
    serve_cached(*hit, age_seconds);
    return;
  }
  const redisReply* guard = mget_element(replies, 1);
  if (is_nil(guard)) {
    seen_guard_ = std::string();
  } else if (guard != nullptr && guard->type == REDIS_REPLY_STRING) {
    seen_guard_ = std::string(reply_text(guard));
  }  // else: an error reply; without the guard a fill could not be made safe
  lookup_ms_ = uv_now(context_.loop);
  miss();
}

std::optional<CachedView> Exchange::decode_hit(std::vector<RedisReplyPtr>& replies,
                                               int64_t& age_seconds) {
  const redisReply* value = mget_element(replies, 0);
  if (value == nullptr && is_error(replies[0].get())) {
    value = replies[0].get();  // the whole MGET failed (e.g. OOM, NOSCRIPT-free errors)
  }
  if (is_nil(value)) {
    return std::nullopt;
  }
  if (value == nullptr || value->type != REDIS_REPLY_STRING) {
    spdlog::warn("cache key {}: Redis answered {}; treated as a miss", plan_.key,
                 is_error(value) ? reply_text(value) : std::string_view("a non-string value"));
    return std::nullopt;
  }
  if (plan_.route != nullptr && plan_.route->format == StoredFormat::Body) {
    // No stored time in a bare body: the age is how much of the TTL has run out.
    const auto remaining_ms = replies.size() > 1 ? reply_integer(replies[1].get()) : std::nullopt;
    if (remaining_ms && *remaining_ms >= 0) {
      age_seconds = std::max<int64_t>(0, (plan_.ttl.count() - *remaining_ms) / 1000);
    }
    body_head_lines_ = "Content-Type: " + plan_.route->content_type + "\r\n";
    return CachedView{200, body_head_lines_, reply_text(value), 0};
  }
  std::string error;
  auto decoded = view_envelope(reply_text(value), error);
  if (!decoded) {
    spdlog::warn("cache key {}: {}; treated as a miss and never served", plan_.key, error);
    return std::nullopt;
  }
  age_seconds = (unix_now_ms() - decoded->stored_at_ms) / 1000;
  return decoded;
}

void Exchange::miss() {
  cache_status_ = "MISS";
  if (!seen_guard_) {
    // Without the guard nothing says which writes this miss came after: fetch alone, and
    // store nothing.
    cache_status_ = "BYPASS";
    forward(false);
    return;
  }
  // Only misses that saw the same guard share a fetch. One that looked up after a write
  // (the guard moved) must not be answered by a fetch that began before it: that answer may
  // predate the write the client has already seen confirmed.
  flight_key_ = plan_.key;
  flight_key_ += '\0';
  flight_key_ += *seen_guard_;
  if (context_.coalescer->follow(flight_key_, *this)) {
    following_ = true;
    return;
  }
  context_.coalescer->lead(flight_key_);
  leading_ = true;
  forward(false);
}

void Exchange::serve_cached(const CachedView& response, int64_t age_seconds) {
  status_ = response.status;
  response_started_ = true;
  keep_alive_ = keep_alive_now();
  HitFraming framing;
  framing.age_seconds = age_seconds;
  framing.x_cache = "HIT";
  framing.keep_alive = keep_alive_;
  framing.head_only = !client_wants_body_;
  framing.extra_headers = rate_header_lines_;
  std::string out;
  write_cached_response(response, framing, out);
  body_bytes_sent_ = client_wants_body_ ? response.body.size() : 0;
  client_.send(std::move(out));
  finish(keep_alive_);
}

void Exchange::on_flight_landed(const std::shared_ptr<const CachedResponse>& response) {
  following_ = false;
  coalesced_ = true;
  cache_status_ = "HIT";
  serve_cached(response->view(), 0);
}

void Exchange::on_flight_abandoned() {
  following_ = false;
  cache_status_ = "BYPASS";  // the leader's response could not be shared: fetch alone
  forward(false);
}

void Exchange::abandon_flight() {
  if (leading_) {
    leading_ = false;
    context_.coalescer->abandon(flight_key_);
  }
}

// The leader's response is complete and shareable: store it (when the lookup's guard allows)
// and answer the followers from it.
void Exchange::finish_fill() {
  if (!storing_) {
    abandon_flight();
    return;
  }
  storing_ = false;
  fill_.stored_at_ms = unix_now_ms();
  auto response = std::make_shared<const CachedResponse>(std::move(fill_));
  const bool fresh_enough =
      uv_now(context_.loop) - lookup_ms_ < static_cast<uint64_t>(kMaxFillAge.count());
  if (seen_guard_ && fresh_enough && context_.cache->available()) {
    std::string value = plan_.route != nullptr && plan_.route->format == StoredFormat::Body
                            ? response->body
                            : encode_envelope(*response);
    context_.cache->fill(plan_, *seen_guard_, std::move(value), fill_ttl_);
  }
  if (leading_) {
    leading_ = false;
    context_.coalescer->land(flight_key_, response);
  }
}

void Exchange::release_held_response() {
  if (!holding_) {
    return;
  }
  holding_ = false;
  client_.send(std::move(held_));
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

void Exchange::forward(bool fresh_connection) {
  if (upstream_head_.empty()) {
    if (method_ == "HEAD" && cache_status_ == "MISS") {
      // nginx's proxy_cache_convert_head: fetch the body once so the miss can fill the cache;
      // the HEAD client still gets the head only.
      head_.method = "GET";
    }
    const std::string client_address(client_.peer_address());
    prepare_upstream_request_headers(head_.headers, ForwardingInfo{client_address, "http"});
    const std::string& prefix = config_->upstream.url.path_prefix;
    const std::string& target =
        plan_.upstream_target.empty() ? head_.target : plan_.upstream_target;
    write_request_head(head_, prefix.empty() ? target : prefix + target, upstream_head_);
  }
  upstream_ = context_.upstream->acquire(fresh_connection);
  if (upstream_ == nullptr) {
    context_.metrics->upstream_errors[static_cast<size_t>(UpstreamError::Refused)].add();
    respond_error(502, "upstream unavailable");
    return;
  }
  upstream_->attach(*this, head_.method == "HEAD");
  if (upstream_started_ns_ == 0) {
    upstream_started_ns_ = uv_hrtime();
  }
  upstream_->send(upstream_head_);
  if (!replay_body_.empty()) {
    upstream_->send(replay_body_);  // a retry: what the failed connection was sent
  }
  if (!unsent_body_.empty()) {
    std::string body;
    body.swap(unsent_body_);
    send_to_upstream(std::move(body));
  }
  if (upstream_ == nullptr) {
    return;
  }
  if (paused_for_upstream_) {
    paused_for_upstream_ = false;
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
    unsent_body_ += bytes;
    if (!paused_for_upstream_ && unsent_body_.size() > kUnsentBodyLimit) {
      paused_for_upstream_ = true;
      client_.pause_reading();
    }
    return;
  }
  if (body_replayable_ && !response_started_) {
    if (replay_body_.size() + bytes.size() <= kReplayLimit) {
      replay_body_ += bytes;
    } else {
      body_replayable_ = false;
      std::string().swap(replay_body_);
    }
  }
  upstream_->send(std::move(bytes));
  if (upstream_ != nullptr && upstream_->congested()) {
    client_.pause_reading();
  }
}

void Exchange::on_request_body(std::string_view chunk) {
  if (response_finished_) {
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
  if (response_finished_) {
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
  if (upstream_paused_ && upstream_ != nullptr && !holding_) {
    upstream_paused_ = false;
    upstream_->resume_reading();
  }
}

void Exchange::on_upstream_drained() { client_.resume_reading(); }

void Exchange::on_upstream_head(ResponseHead& head) {
  upstream_head_ns_ = uv_hrtime();
  status_ = head.status;
  std::string().swap(replay_body_);
  body_replayable_ = false;

  prepare_client_response_headers(head.headers);
  if (!rate_header_lines_.empty()) {
    remove_rate_limit_fields(head.headers);
  }
  if (cache_status_ == "MISS") {
    const StoreDecision decision = decide_storage(head, plan_.route, plan_.ttl, config_->cache);
    if (decision.store) {
      storing_ = true;
      if (context_.cache->fills_failing()) {
        cache_status_ = "BYPASS";  // still tried, in case Redis has recovered
      }
      fill_.status = head.status;
      fill_.head_lines = stored_head_lines(head.headers);
      fill_ttl_ = decision.ttl;
    } else {
      spdlog::debug("{} {}: not stored: {}", method_, head_.target, decision.reason);
      cache_status_ = "BYPASS";
      abandon_flight();  // never share what may not be stored
    }
  }
  head.headers.add("X-Cache", std::string(cache_status_));

  // A response that starts before the request body was read whole leaves unread bytes on the
  // connection: close it afterwards rather than parse them as a request.
  keep_alive_ = keep_alive_now();

  ResponseFraming framing;
  if (!client_wants_body_ || head.framing == BodyFraming::None) {
    framing.framing = BodyFraming::None;
    framing.announce_length = head.length_announced && head.status != 204;
    framing.content_length = head.content_length;
  } else if (head.framing == BodyFraming::ContentLength) {
    framing.framing = BodyFraming::ContentLength;
    framing.content_length = head.content_length;
  } else if (head_.version.at_least_1_1()) {
    framing.framing = BodyFraming::Chunked;
    client_chunked_ = true;
  } else {
    // An HTTP/1.0 client cannot read chunks: the end of the body is the end of the connection.
    framing.framing = BodyFraming::UntilClose;
    keep_alive_ = false;
  }
  if (keep_alive_ && !head_.version.at_least_1_1()) {
    head.headers.add("Connection", "keep-alive");
  }
  framing.keep_alive = keep_alive_;
  framing.extra_lines = rate_header_lines_;

  std::string out;
  out.reserve(256 + head.headers.size() * 48);
  write_response_head(head.status, head.reason, head.headers, framing, out);
  response_started_ = true;

  const bool invalidates =
      plan_.action == CacheAction::Invalidate && head.status >= 200 && head.status < 300;
  if (invalidates) {
    // The next read must not see the old entry: the answer waits until Redis confirms.
    redis_call_ = context_.cache->available()
                      ? context_.cache->invalidate(plan_, *this, kInvalidateTag)
                      : nullptr;
    if (redis_call_ != nullptr) {
      holding_ = true;
      held_ = std::move(out);
      if (upstream_ != nullptr) {
        upstream_paused_ = true;
        upstream_->pause_reading();
      }
      return;
    }
    spdlog::warn(
        "{} {}: Redis unavailable, cache entries not invalidated; they may be stale "
        "until their TTL",
        method_, head_.target);
  }
  client_.send(std::move(out));
}

void Exchange::on_upstream_body(std::string_view chunk) {
  if (storing_) {
    if (fill_.body.size() + chunk.size() > config_->cache.max_object_size) {
      storing_ = false;
      std::string().swap(fill_.body);
      abandon_flight();
    } else {
      fill_.body.append(chunk);
    }
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
  if (holding_) {
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
  finish_fill();
  if (holding_) {
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
  storing_ = false;
  const bool will_retry = !response_started_ && retryable && !retried_ && body_replayable_ &&
                          is_idempotent_method(head_.method);
  if (!will_retry) {
    // A retried pooled connection is routine; only what the client may notice is counted.
    context_.metrics->upstream_errors[static_cast<size_t>(error)].add();
  }
  if (response_started_) {
    abandon_flight();
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
  abandon_flight();
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
  abandon_flight();
  status_ = status;
  keep_alive_ = keep_alive_now();
  response_started_ = true;
  std::string bytes =
      error_response(status, message, keep_alive_, rate_header_lines_, !client_wants_body_);
  body_bytes_sent_ = response_body_size(bytes);
  client_.send(std::move(bytes));
  finish(keep_alive_);
}

void Exchange::finish(bool keep_alive) {
  response_finished_ = true;
  client_.finish_response(keep_alive);
}

}  // namespace cachecar
