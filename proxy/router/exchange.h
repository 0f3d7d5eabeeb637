#pragma once
// One request's asynchronous life, from its parsed head to the last byte of its response. The
// Exchange coordinates; the decisions are made by stages and helpers with one job each:
//
//   admission ─▶ stages' Redis batch, one round trip ─▶ rate limit: 429 / 503
//   (400, 421)   (RateLimitStage, LookupStage)       ├▶ hit: answer from the stored response
//                                                    └▶ miss: follow the key's Flight, or lead
//                                                       one: fetch, stream back, fill
//   writes (CacheAction::Invalidate): WriteInvalidation's fence (reject mode), forward; a 2xx
//   answer waits until its keys are deleted, or journaled when Redis cannot confirm it
//
// Phases, in order (a request may skip any but the last):
//   Admitting → Checking → Fencing → Following → Forwarding → Holding → Responding → Done
//
// Redis never fails a request: when it is down, slow or answers nonsense, the request goes to
// the upstream with "X-Cache: BYPASS".
//
// Ownership: the ClientConnection owns its current Exchange and destroys it only where no
// Exchange method is on the stack (a write or read callback, a close callback). The exchange
// borrows an UpstreamConnection while one is attached and a Redis call while one is pending;
// ~Exchange detaches, cancels and leaves its flight, so no callback reaches a dead exchange.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_status.h"
#include "cache/flight.h"
#include "cache/plan.h"
#include "cache/recording.h"
#include "http/message.h"
#include "redis/redis_client.h"
#include "router/client_session.h"
#include "router/lookup_stage.h"
#include "router/rate_limit_stage.h"
#include "router/request_body.h"
#include "router/session_stage.h"
#include "router/stored_copy.h"
#include "router/worker_context.h"
#include "router/write_invalidation.h"
#include "upstream/upstream_connection.h"

namespace cachecar {

class Exchange final : private UpstreamHandler,
                       private RedisWaiter,
                       private Flight::Listener,
                       private WriteInvalidation::Listener {
 public:
  Exchange(WorkerContext& context, ClientSession& client, RequestHead head);
  // From the worker thread's cache of freed exchanges (exchange.cc says why).
  static void* operator new(size_t size);
  static void operator delete(void* block);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  void on_request_body(std::string_view chunk);
  void on_request_complete();
  // The client's write queue fell below the low watermark.
  void on_client_drained();

  bool response_started() const {
    return phase_ == Phase::Holding || phase_ == Phase::Responding || phase_ == Phase::Done;
  }
  // The connection answered this request itself (a body over the limit, a broken chunk) and
  // is about to destroy the exchange: its access line and metrics carry that answer, not 499.
  void answered_by_connection(int status, uint64_t body_bytes);

 private:
  enum class Phase {
    Admitting,   // start() has not decided yet
    Checking,    // the stages' Redis batch is out
    Fencing,     // a write waits for its keys to be fenced (on_invalidation_failure: reject)
    Following,   // a miss waiting for another request's fetch of the same key
    Forwarding,  // the request goes to the upstream; no response head yet
    Holding,     // a write's 2xx answer waits for its invalidation to be confirmed
    Responding,  // response bytes are going to the client
    Done,        // the response is complete
  };
  // Stages before the upstream.
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void on_stages_done(const std::vector<RedisReplyPtr>& replies);
  // The rate limit and the lookup, for the client or (`user` not null) its session's user.
  void begin_client_stages(const std::string* user);
  void check_as_user();
  void on_user_stages_done(const std::vector<RedisReplyPtr>& replies);
  // Every check passed: a write's fence, then the lookup's verdict or the upstream.
  void after_checks(const std::vector<RedisReplyPtr>& replies);
  // A request cachecar answers itself renews its session as the app would have.
  void touch_session();
  // The lookup's replies (the stages' batch, or the variant's own call), or none.
  void on_lookup_done(const std::vector<RedisReplyPtr>& replies);
  // Mode http: the key holds a vary index; the request's variant is read next.
  void look_up_variant(const VaryFields& vary);
  // Mode http, stale-while-revalidate: `lookup`'s stale entry is refreshed off this request.
  void refresh_in_background(const LookupResult& lookup);
  void refuse(const Refusal& refusal);

  // Cache.
  void miss(std::optional<std::string> seen_guard);
  void serve_cached(const CachedView& response, int64_t age_seconds);
  void serve_not_modified(const CachedView& response, int64_t age_seconds);
  // cache.mode: http: the stored copy answers (confirmed by a 304, or standing in for a
  // failed upstream).
  void answer_from_copy();
  bool copy_stands_in_for_failure();
  void store_and_land(std::shared_ptr<const CachedResponse> response, Duration ttl);
  // RFC 9211 Cache-Status for this request's answer: "" when cache.cache_status is off.
  std::string cache_status_field() const;
  void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) override;
  void on_flight_abandoned() override;
  void begin_recording(const ResponseHead& head);
  void finish_fill();
  void on_fence_done(bool fenced) override;
  void on_invalidation_done() override;
  void release_held_response();

  // Upstream side.
  void forward(bool retry);
  void send_to_upstream(std::string bytes);
  void on_upstream_head(ResponseHead& head) override;
  void on_upstream_interim(const ResponseHead& head) override;
  void on_upstream_body(std::string_view chunk) override;
  void on_upstream_complete() override;
  void on_upstream_error(UpstreamError error, bool retryable) override;
  void on_upstream_drained() override;

  // Client side.
  void send_response_bytes(std::string bytes);
  void finish_upstream_response();
  void respond_error(int status, std::string_view message);
  void finish(bool keep_alive);
  bool keep_alive_now() const;

  WorkerContext& context_;
  ClientSession& client_;
  const std::shared_ptr<const Config> config_;  // the configuration this request started with
  RequestHead head_;
  const std::string method_;  // as the client sent it (head_.method may become GET, see HEAD)
  const uint64_t started_ns_;
  int64_t started_unix_ms_ = 0;  // Unix time when start() ran
  IpAddress client_ip_;          // the client as the rate limit knows it
  Phase phase_ = Phase::Admitting;
  RequestPlan plan_;

  // Stages.
  RateLimitStage limit_;
  SessionStage session_;
  bool awaiting_user_ = false;  // the limit and lookup wait for the session's user
  LookupStage lookup_{plan_};
  RedisClient::Call* redis_call_ = nullptr;  // the stages' batch
  WriteInvalidation invalidation_;

  // Cache.
  CacheStatus cache_status_ = CacheStatus::Bypass;
  Flight flight_;
  std::optional<std::string> seen_guard_;  // a miss that may be filled: the guard it saw
  uint64_t seen_epoch_ = 0;                // and the cache epoch, stamped on what it stores
  int64_t fill_lookup_unix_ms_ = 0;        // when its lookup read seen_guard_, for tag checks
  uint64_t lookup_ms_ = 0;
  StoredCopy stored_copy_;                     // mode http: a stale entry asked about
  // Mode http: the request's fields as the upstream sees them (hop-by-hop and Connection-named
  // fields gone, forwarding fields set). Vary selectors are made from these at lookup and at
  // store alike, so that a client cannot have one variant stored under another's key.
  Headers vary_request_;
  std::string_view forwarded_because_ = "uri-miss";  // Cache-Status fwd=
  std::optional<int64_t> fresh_for_;           // Cache-Status ttl= of an entry that was found
  ResponseRecording recording_;  // the response being streamed, kept for the fill
  std::string held_;             // Holding: the answer so far
  bool completed_while_holding_ = false;

  // Toward the upstream.
  UpstreamConnection* upstream_ = nullptr;  // borrowed while attached
  std::string upstream_head_;               // serialised once, sent again on a retry
  RequestBodyBuffer body_;
  bool request_complete_ = false;
  bool retried_ = false;
  bool upstream_paused_ = false;             // response-side backpressure from the client
  bool client_paused_for_upstream_ = false;  // body held until an upstream is attached
  uint8_t interim_relayed_ = 0;              // 1xx responses passed on to the client
  uint64_t upstream_started_ns_ = 0;
  uint64_t upstream_head_ns_ = 0;

  // Toward the client.
  bool client_wants_body_ = true;  // false for HEAD
  bool client_chunked_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
  uint64_t body_bytes_sent_ = 0;
};

}  // namespace cachecar
