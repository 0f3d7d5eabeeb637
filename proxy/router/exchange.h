#pragma once
// One request's asynchronous life, from its parsed head to the last byte of its response:
//
//   plan ─▶ rate limit + Lookup: Redis, one round trip ─▶ over the limit: 429
//        │                                             ├▶ hit: answer from the stored response
//        │                                      └▶ miss: follow a flight for the key, or lead
//        │                                         one: fetch, stream back, fill (conditional)
//        ├▶ Invalidate: forward; a 2xx answer waits until its keys are deleted
//        └▶ Bypass: forward
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

#include "cache/cacheability.h"
#include "cache/coalescer.h"
#include "cache/envelope.h"
#include "http/message.h"
#include "ratelimit/limiter.h"
#include "redis/redis_client.h"
#include "router/plan.h"
#include "server/client_session.h"
#include "server/worker_context.h"
#include "upstream/upstream_connection.h"

namespace cachecar {

class Exchange final : private UpstreamHandler, private RedisWaiter, private CoalescingFollower {
 public:
  Exchange(WorkerContext& context, ClientSession& client, RequestHead head);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  void on_request_body(std::string_view chunk);
  void on_request_complete();
  // The client's write queue fell below the low watermark.
  void on_client_drained();

  bool response_started() const { return response_started_; }
  // The connection answered this request itself (a body over the limit, a broken chunk) and
  // is about to destroy the exchange: its access line and metrics carry that answer, not 499.
  void answered_by_connection(int status, uint64_t body_bytes);

 private:
  // A request body of at most this many bytes is kept until the response starts, so the
  // request can be replayed on a fresh connection (the pooled one was closed under us).
  static constexpr size_t kReplayLimit = 64 * 1024;
  // Request body bytes held while no upstream connection is attached yet (the limiter or the
  // lookup is still out) beyond which the client is no longer read.
  static constexpr size_t kUnsentBodyLimit = 256 * 1024;
  enum RedisTag : uint64_t { kCheckTag = 1, kInvalidateTag = 2 };

  // Cache side.
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  // The limiter's and the lookup's replies, from the one round trip that carried both.
  void on_check_done(std::vector<RedisReplyPtr>& replies);
  // False when the request was answered (429, or 503 when the limiter fails closed).
  bool apply_limit(const redisReply* reply);
  void on_lookup_done(std::vector<RedisReplyPtr>& replies);
  // A view into `replies` (or into body_head_lines_): serve it before they go.
  std::optional<CachedView> decode_hit(std::vector<RedisReplyPtr>& replies, int64_t& age_seconds);
  void miss();
  void serve_cached(const CachedView& response, int64_t age_seconds);
  void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) override;
  void on_flight_abandoned() override;
  void abandon_flight();
  void finish_fill();
  void release_held_response();

  // Upstream side.
  void forward(bool fresh_connection);
  void send_to_upstream(std::string bytes);
  void on_upstream_head(ResponseHead& head) override;
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
  RequestPlan plan_;
  std::optional<LimitPlan> limit_;
  std::string rate_header_lines_;  // RateLimit-* lines for every response of a limited request

  // Cache.
  std::string_view cache_status_ = "BYPASS";  // X-Cache: HIT, MISS or BYPASS
  RedisClient::Call* redis_call_ = nullptr;   // pending lookup or invalidation
  bool leading_ = false;                      // this exchange's fetch is the key's flight
  bool following_ = false;                    // waiting for another exchange's flight
  bool coalesced_ = false;                    // answered from another exchange's fetch
  std::optional<std::string> seen_guard_;     // set when a miss may be filled
  std::string flight_key_;                    // the coalescing flight: key and seen guard
  uint64_t lookup_ms_ = 0;
  bool storing_ = false;  // the response being streamed is kept for the fill
  CachedResponse fill_;
  std::string body_head_lines_;  // format: body hits: the route's Content-Type line
  Duration fill_ttl_{0};
  bool holding_ = false;  // a write's 2xx answer waits for its invalidation
  bool completed_while_holding_ = false;
  std::string held_;

  // Toward the upstream.
  UpstreamConnection* upstream_ = nullptr;  // borrowed while attached
  std::string upstream_head_;               // serialised once, sent again on a retry
  std::string replay_body_;                 // framed body bytes sent so far
  // Framed body bytes that arrived before an upstream connection was attached: they go out
  // right after the head. Without them a body that came in the same reads as its head would
  // be lost whenever Redis answers after those reads (issue 12).
  std::string unsent_body_;
  bool paused_for_upstream_ = false;  // client reading stopped until unsent_body_ is sent
  bool body_replayable_ = true;
  bool request_complete_ = false;
  bool retried_ = false;
  bool upstream_paused_ = false;
  uint64_t upstream_started_ns_ = 0;
  uint64_t upstream_head_ns_ = 0;

  // Toward the client.
  bool client_wants_body_ = true;  // false for HEAD
  bool response_started_ = false;
  bool response_finished_ = false;
  bool client_chunked_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
  uint64_t body_bytes_sent_ = 0;
};

}  // namespace cachecar
