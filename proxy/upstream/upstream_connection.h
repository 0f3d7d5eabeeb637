#pragma once
// One TCP connection to the product API. Self-owned: created by UpstreamPool, deleted only by
// its last close callback. While a request is in flight it reports to exactly one
// UpstreamHandler; between requests it sits in the pool with a read armed, so that an
// upstream's close of an idle connection is noticed (nginx's keepalive close_handler).
//
// Re-entrancy: handler calls never delete this object (close() only starts closing), so
// every method may be called from inside a handler callback.

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "http/parser.h"
#include "upstream/upstream_error.h"

namespace cachecar {

class UpstreamPool;

class UpstreamHandler {
 public:
  virtual void on_upstream_head(ResponseHead& head) = 0;
  // An interim response came before the final head (RFC 9110 §15.2). Ignored by default.
  virtual void on_upstream_interim(const ResponseHead& /*head*/) {}
  virtual void on_upstream_body(std::string_view chunk) = 0;
  // The response is complete. The connection has already gone back to the pool or closed:
  // the handler must forget it.
  virtual void on_upstream_complete() = 0;
  // The exchange with the upstream failed. `retryable` is true when the request may be sent
  // again on a fresh connection: a pooled connection failed before any response byte, which
  // is how a keep-alive connection closed by the upstream looks. The connection is closing:
  // the handler must forget it.
  virtual void on_upstream_error(UpstreamError error, bool retryable) = 0;
  // The request bytes queued toward the upstream fell below the low watermark.
  virtual void on_upstream_drained() = 0;

 protected:
  ~UpstreamHandler() = default;
};

class UpstreamConnection final : private ResponseParser::Listener {
 public:
  // Starts connecting to `address`. Returns nullptr (and logs) if the socket cannot be made.
  static UpstreamConnection* connect(UpstreamPool& pool, const sockaddr* address);

  // Starts a request: `handler` receives the response. `head_request` tells the parser that
  // the response has no body. Requires: not attached and not closing.
  void attach(UpstreamHandler& handler, bool head_request);
  // Queues request bytes (head or framed body).
  void send(std::string bytes);
  // The whole request has been queued; only then may the connection be reused.
  void finish_request();
  // True when queued request bytes exceed the high watermark: stop reading the client.
  bool congested() const;
  // Response-side backpressure: stop/start reading the upstream.
  void pause_reading();
  void resume_reading();
  // The handler goes away before the response completed: the connection cannot be reused.
  void detach();

  // Starts closing; idempotent. Never deletes synchronously.
  void close();

  bool reused() const { return requests_started_ > 1; }
  bool idle() const { return state_ == State::Idle; }
  // uv_now() when the connection last went idle (valid while idle()).
  uint64_t idle_since_ms() const { return last_activity_ms_; }

 private:
  enum class State { Connecting, Active, Idle, Closing };

  explicit UpstreamConnection(UpstreamPool& pool);
  ~UpstreamConnection();

  static void on_connect(uv_connect_t* request, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* request, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);

  ParseStep on_response_head(ResponseHead& head) override;
  void on_interim_response(const ResponseHead& head) override;
  ParseStep on_response_body(std::string_view chunk) override;
  ParseStep on_response_complete() override;

  void handle_data(std::string_view data);
  void handle_eof();
  void complete_response();
  void fail(UpstreamError error);
  void arm_timer();
  void become_idle();

  UpstreamPool& pool_;
  uv_tcp_t socket_{};
  uv_connect_t connect_request_{};
  uv_timer_t timer_{};
  ResponseParser parser_;
  UpstreamHandler* handler_ = nullptr;  // borrowed while a request is in flight
  State state_ = State::Connecting;
  int open_handles_ = 0;
  uint64_t requests_started_ = 0;
  size_t queued_bytes_ = 0;
  bool response_started_ = false;  // any byte of the current response arrived
  bool response_complete_ = false;
  bool request_complete_ = false;
  bool keep_alive_ = false;
  bool reading_paused_ = false;
  bool was_congested_ = false;
  bool write_failed_ = false;  // never reuse: part of the request may not have arrived
  bool send_error_ = false;    // uv_write refused a write; reported from the timer
  uint64_t last_activity_ms_ = 0;
};

}  // namespace cachecar
