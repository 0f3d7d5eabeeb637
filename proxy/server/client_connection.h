#pragma once
// One client's TCP connection: read → parse → Exchange → write, with keep-alive, pipelining,
// timeouts and limits.
//
// Ownership: self-owned. accept() creates it; only the last close callback deletes it (the
// destructor is private). close() merely starts closing, so it is safe inside any callback.
//
// Requests are served one at a time: the parser pauses at the end of each message and the
// bytes after it wait in pending_input_ until the response is written, so responses leave in
// request order and memory stays bounded.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "http/parser.h"
#include "router/client_session.h"
#include "router/exchange.h"

namespace cachecar {

class Worker;

class ClientConnection final : public ClientSession, private RequestParser::Listener {
 public:
  // Accepts one pending connection from `listener`.
  static void accept(Worker& worker, uv_stream_t* listener);

  // Stop keeping the connection alive: close now if idle, else after the current response.
  void begin_drain();
  // Starts closing at once; idempotent.
  void close();
  // Called by the worker's ready list: a finished response may be completed now that no
  // exchange code is on the stack.
  void on_ready();

  // Intrusive links for the worker's list of open connections.
  ClientConnection* prev = nullptr;
  ClientConnection* next = nullptr;
  bool in_ready_list = false;  // the worker's: listed in its ready list

 private:
  enum class State {
    Open,       // reading requests, writing responses
    Lingering,  // write side shut down; reading and discarding until EOF or the linger timer
    Closing,
  };

  explicit ClientConnection(Worker& worker);
  ~ClientConnection();

  // ClientSession
  void send(std::string bytes) override;
  void send_copy(std::string_view bytes) override;
  bool send_congested() const override;
  void pause_reading() override;
  void resume_reading() override;
  void finish_response(bool keep_alive) override;
  void abort_response() override;
  bool may_keep_alive() const override;
  std::string_view peer_address() const override { return peer_address_; }
  const IpAddress& peer_ip() const override { return peer_ip_; }

  // RequestParser::Listener
  ParseStep on_request_head(RequestHead& head) override;
  ParseStep on_request_body(std::string_view chunk) override;
  ParseStep on_request_complete() override;

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* request, int status);
  static void on_shutdown(uv_shutdown_t* request, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);

  // Writes what the socket takes now: the count, or nullopt when nothing may be written (the
  // connection is closing, or closed here on a write error).
  std::optional<size_t> write_at_once(std::string_view bytes);
  void queue_write(std::string bytes);
  void process_input(std::string_view data);
  // Answers a request cachecar refuses before or while reading it, then closes.
  // `write_access_line`: false for a connection that never sent a byte of a request (nginx logs
  // none either).
  void reject(int status, std::string_view reason, bool write_access_line = true);
  void log_refused_request(int status, uint64_t body_bytes);
  void complete_response();
  void close_gracefully();
  void update_reading();
  void arm_timer(uint64_t timeout_ms);
  void handle_timeout();

  Worker& worker_;
  uv_tcp_t socket_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_request_{};
  RequestParser parser_;
  std::unique_ptr<Exchange> exchange_;
  std::string pending_input_;  // bytes after the current request, not parsed yet
  std::string peer_address_;
  IpAddress peer_ip_;
  State state_ = State::Open;
  int open_handles_ = 0;
  bool admitted_ = false;  // counted against limits.max_connections

  bool request_complete_ = false;
  bool response_finished_ = false;
  bool keep_alive_after_ = false;
  bool served_any_ = false;
  bool draining_ = false;
  bool paused_by_exchange_ = false;
  bool reading_ = false;
  bool was_congested_ = false;
  int pending_writes_ = 0;
  size_t queued_bytes_ = 0;
  uint64_t head_deadline_ms_ = 0;  // when the request head being read must be complete
  uint64_t last_activity_ms_ = 0;
  uint64_t timer_due_ms_ = 0;  // when timer_ fires, while it is active
};

}  // namespace cachecar
