#include "server/client_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "admin/metrics.h"
#include "http/error_page.h"
#include "log/logging.h"
#include "net/listener.h"
#include "net/resolver.h"
#include "server/worker.h"
#include "uv/handle.h"

namespace cachecar {
namespace {

// Response bytes queued toward a client beyond which the upstream is no longer read: bounds
// memory for a large download to a slow client.
constexpr size_t kHighWatermark = 256 * 1024;
constexpr size_t kLowWatermark = 64 * 1024;
// Pipelined bytes held while a response is in progress before reading stops.
constexpr size_t kMaxPendingInput = 64 * 1024;
// How long a closing connection keeps reading so that the client sees our last response
// before a reset (nginx's lingering_close).
constexpr uint64_t kLingerMs = 2'000;

struct ClientWrite {
  uv_write_t request{};
  std::string bytes;
};

RequestParser::Limits parser_limits(const Config& config) {
  return RequestParser::Limits{config.limits.max_header_bytes, config.limits.max_headers,
                               config.limits.max_body_bytes};
}

uint64_t ms(Duration d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

ClientConnection::ClientConnection(Worker& worker)
    : worker_(worker), parser_(*this, parser_limits(*worker.context().config)) {}

ClientConnection::~ClientConnection() {
  // The exchange logs and detaches from the upstream; it reads peer_address_, so it goes
  // before any member.
  exchange_.reset();
  worker_.unschedule_ready(this);
  if (admitted_) {
    worker_.forget(this);
  }
}

void ClientConnection::accept(Worker& worker, uv_stream_t* listener) {
  auto* connection = new ClientConnection(worker);
  uv_loop_t* loop = worker.loop();
  uv_check("uv_tcp_init", uv_tcp_init(loop, &connection->socket_));
  uv_check("uv_timer_init", uv_timer_init(loop, &connection->timer_));
  connection->socket_.data = connection;
  connection->timer_.data = connection;
  connection->shutdown_request_.data = connection;
  connection->open_handles_ = 2;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&connection->socket_)) != 0) {
    connection->close();
    return;
  }
  if (!worker.admit(connection)) {
    // Beyond max_connections: close at once rather than queue, so the client can go elsewhere.
    spdlog::debug("connection refused: limits.max_connections reached");
    connection->close();
    return;
  }
  connection->admitted_ = true;
  uv_tcp_nodelay(&connection->socket_, 1);
  connection->peer_address_ = peer_address_text(&connection->socket_);
  connection->peer_ip_ = parse_ip(connection->peer_address_).value_or(IpAddress{});
  const uint64_t now = uv_now(loop);
  connection->last_activity_ms_ = now;
  connection->head_deadline_ms_ = now + ms(worker.context().config->limits.header_timeout);
  connection->update_reading();
  connection->arm_timer(ms(worker.context().config->limits.header_timeout));
}

// ---------------------------------------------------------------------------------------------
// Reading and parsing

void ClientConnection::on_alloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  *buf = owner_of<ClientConnection>(handle)->worker_.read_buffer();
}

void ClientConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = owner_of<ClientConnection>(stream);
  if (self->state_ == State::Closing) {
    return;
  }
  if (nread < 0) {
    // EOF or reset. A client that half-closes after sending its request still wants the
    // answer, but HTTP/1.1 clients do not do that in practice, and waiting would let a
    // closed client pin an upstream request; nginx closes too.
    self->close();
    return;
  }
  if (nread == 0) {
    return;
  }
  self->last_activity_ms_ = uv_now(self->worker_.loop());
  if (self->state_ == State::Lingering) {
    return;  // discarded
  }
  self->process_input(std::string_view(buf->base, static_cast<size_t>(nread)));
}

void ClientConnection::process_input(std::string_view data) {
  if (state_ != State::Open || data.empty()) {
    return;
  }
  if (exchange_ != nullptr && request_complete_) {
    // A pipelined request: it waits until the current response is written.
    pending_input_.append(data);
    update_reading();
    return;
  }
  // The first byte of a new request on a kept-alive connection: the head must now be complete
  // within header_timeout, not idle_timeout.
  const bool head_starts = exchange_ == nullptr && !parser_.in_message() && served_any_;
  if (head_starts) {
    head_deadline_ms_ =
        uv_now(worker_.loop()) + ms(worker_.context().config->limits.header_timeout);
  }
  const ParseResult result = parser_.execute(data);
  if (head_starts && exchange_ == nullptr) {
    // The head did not end in this read. Nearly every one does, and then needs no timer of
    // its own: re-arming the timer for every request cost two timer-heap updates each.
    arm_timer(head_deadline_ms_ - uv_now(worker_.loop()));
  }
  switch (result.kind) {
    case ParseResult::Kind::Ok:
      break;
    case ParseResult::Kind::Paused:
      parser_.resume();
      pending_input_.append(data.substr(result.consumed));
      update_reading();
      break;
    case ParseResult::Kind::Error:
      spdlog::debug("{}: bad request ({}): {}", peer_address_, result.status, result.reason);
      reject(result.status, result.reason);
      return;
  }
}

ParseStep ClientConnection::on_request_head(RequestHead& head) {
  if (head.expect_continue) {
    // RFC 9110 §10.1.1: the client waits for this before sending the body. Limits were
    // checked by the parser already (413 comes instead of 100).
    send("HTTP/1.1 100 Continue\r\n\r\n");
  }
  request_complete_ = false;
  response_finished_ = false;
  exchange_ = std::make_unique<Exchange>(worker_.context(), *this, std::move(head));
  exchange_->start();
  return state_ == State::Closing ? ParseStep::Pause : ParseStep::Continue;
}

ParseStep ClientConnection::on_request_body(std::string_view chunk) {
  exchange_->on_request_body(chunk);
  return state_ == State::Closing ? ParseStep::Pause : ParseStep::Continue;
}

ParseStep ClientConnection::on_request_complete() {
  request_complete_ = true;
  served_any_ = true;
  exchange_->on_request_complete();
  return ParseStep::Pause;
}

void ClientConnection::reject(int status, std::string_view reason, bool write_access_line) {
  std::string response = error_response(status, reason, false);
  const uint64_t body_bytes = response_body_size(response);
  if (exchange_ != nullptr) {
    if (exchange_->response_started()) {
      close();  // a response is under way: the only honest signal left is the close
      return;
    }
    exchange_->answered_by_connection(status, body_bytes);
    exchange_.reset();  // safe: called from a read callback, no exchange code on the stack
  } else {
    worker_.context().metrics->record_request("OTHER", status, CacheStatus::None, 0);
    if (write_access_line) {
      log_refused_request(status, body_bytes);
    }
  }
  pending_input_.clear();
  send(std::move(response));
  response_finished_ = true;
  keep_alive_after_ = false;
  if (pending_writes_ == 0) {
    close_gracefully();
  }
}

// A request refused before its head was complete has no method or target to log ("-", as
// nginx writes for a request line it could not read).
void ClientConnection::log_refused_request(int status, uint64_t body_bytes) {
  const uint64_t header_timeout = ms(worker_.context().config->limits.header_timeout);
  const uint64_t head_began_ms = head_deadline_ms_ - std::min(head_deadline_ms_, header_timeout);
  AccessRecord record;
  record.client = peer_address_;
  record.method = "-";
  record.target = "-";
  record.status = status;
  record.bytes = body_bytes;
  record.total_ms = static_cast<double>(uv_now(worker_.loop()) - head_began_ms);
  log_access(record);
}

// ---------------------------------------------------------------------------------------------
// ClientSession

void ClientConnection::send(std::string bytes) {
  const std::optional<size_t> written = write_at_once(bytes);
  if (written && *written < bytes.size()) {
    queue_write(*written == 0 ? std::move(bytes) : bytes.substr(*written));
  }
}

void ClientConnection::send_copy(std::string_view bytes) {
  const std::optional<size_t> written = write_at_once(bytes);
  if (written && *written < bytes.size()) {
    queue_write(std::string(bytes.substr(*written)));
  }
}

std::optional<size_t> ClientConnection::write_at_once(std::string_view bytes) {
  if (state_ != State::Open || bytes.empty()) {
    return std::nullopt;
  }
  if (pending_writes_ != 0) {
    return 0;  // behind queued bytes
  }
  // Most responses fit in the socket buffer: written at once, with no request to allocate,
  // no callback, and none of the epoll_ctl that libuv makes when a queued write drains.
  uv_buf_t direct =
      uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  const int written = uv_try_write(reinterpret_cast<uv_stream_t*>(&socket_), &direct, 1);
  if (written == static_cast<int>(bytes.size())) {
    last_activity_ms_ = uv_now(worker_.loop());
    return bytes.size();
  }
  if (written >= 0 || written == UV_EAGAIN) {
    return written > 0 ? static_cast<size_t>(written) : 0;
  }
  close();
  return std::nullopt;
}

void ClientConnection::queue_write(std::string bytes) {
  auto* write = new ClientWrite;
  write->bytes = std::move(bytes);
  write->request.data = this;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  const int rc =
      uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&socket_), &buf, 1, on_write);
  if (rc != 0) {
    delete write;
    close();
    return;
  }
  ++pending_writes_;
  queued_bytes_ += buf.len;
  if (queued_bytes_ > kHighWatermark) {
    was_congested_ = true;
  }
}

bool ClientConnection::send_congested() const { return queued_bytes_ > kHighWatermark; }

void ClientConnection::pause_reading() {
  paused_by_exchange_ = true;
  update_reading();
}

void ClientConnection::resume_reading() {
  paused_by_exchange_ = false;
  update_reading();
}

void ClientConnection::finish_response(bool keep_alive) {
  response_finished_ = true;
  // An exchange may answer from its head callback, before the parser has seen the (empty)
  // body end: whether the request is complete is asked in complete_response(), which runs
  // after the read callback.
  keep_alive_after_ = keep_alive;
  if (pending_writes_ == 0) {
    worker_.schedule_ready(this);
  }
}

void ClientConnection::abort_response() { close(); }

bool ClientConnection::may_keep_alive() const { return !draining_ && !worker_.draining(); }

void ClientConnection::on_write(uv_write_t* request, int status) {
  auto* write = reinterpret_cast<ClientWrite*>(request);
  auto* self = owner_of<ClientConnection>(request);
  self->queued_bytes_ -= write->bytes.size();
  --self->pending_writes_;
  delete write;
  if (self->state_ != State::Open) {
    return;
  }
  if (status != 0) {
    spdlog::debug("{}: write failed: {}", self->peer_address_, uv_strerror(status));
    self->close();
    return;
  }
  self->last_activity_ms_ = uv_now(self->worker_.loop());
  if (self->pending_writes_ == 0 && self->response_finished_) {
    self->complete_response();
    return;
  }
  if (self->was_congested_ && self->queued_bytes_ <= kLowWatermark) {
    self->was_congested_ = false;
    if (self->exchange_ != nullptr) {
      self->exchange_->on_client_drained();
    }
  }
}

void ClientConnection::on_ready() {
  if (state_ == State::Open && pending_writes_ == 0 && response_finished_) {
    complete_response();
  }
}

// Runs only from a loop callback (write completion or the ready list), never under an
// Exchange method, so the exchange can be destroyed here.
void ClientConnection::complete_response() {
  response_finished_ = false;
  exchange_.reset();
  if (!keep_alive_after_ || !request_complete_ || draining_ || worker_.draining()) {
    close_gracefully();
    return;
  }
  request_complete_ = false;
  paused_by_exchange_ = false;
  was_congested_ = false;
  last_activity_ms_ = uv_now(worker_.loop());
  std::string input;
  input.swap(pending_input_);
  update_reading();
  arm_timer(ms(worker_.context().config->limits.idle_timeout));
  if (!input.empty()) {
    process_input(input);
  }
}

// ---------------------------------------------------------------------------------------------
// Flow control, timers, closing

void ClientConnection::update_reading() {
  if (state_ == State::Closing) {
    return;
  }
  const bool want = state_ == State::Lingering ||
                    (!paused_by_exchange_ && pending_input_.size() < kMaxPendingInput);
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_);
  if (want && !reading_) {
    reading_ = uv_read_start(stream, on_alloc, on_read) == 0;
  } else if (!want && reading_) {
    uv_read_stop(stream);
    reading_ = false;
  }
}

// Restarting a timer is a heap operation; most requests would do it twice. A timer that
// already fires no later than needed is left alone: handle_timeout() re-arms it for the rest.
void ClientConnection::arm_timer(uint64_t timeout_ms) {
  if (state_ == State::Closing) {
    return;
  }
  const uint64_t due = uv_now(worker_.loop()) + std::max<uint64_t>(timeout_ms, 1);
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)) && timer_due_ms_ <= due) {
    return;
  }
  timer_due_ms_ = due;
  uv_timer_start(&timer_, on_timer, std::max<uint64_t>(timeout_ms, 1), 0);
}

void ClientConnection::on_timer(uv_timer_t* timer) {
  owner_of<ClientConnection>(timer)->handle_timeout();
}

// One timer per connection, re-armed lazily: activity only records last_activity_ms_, and the
// timer, when it fires, decides from the connection's state whether a limit really passed.
void ClientConnection::handle_timeout() {
  if (state_ == State::Closing) {
    return;
  }
  if (state_ == State::Lingering) {
    close();
    return;
  }
  const Config& config = *worker_.context().config;
  const uint64_t now = uv_now(worker_.loop());
  const uint64_t idle_timeout = ms(config.limits.idle_timeout);
  if (exchange_ != nullptr) {
    const bool waiting_on_client = !request_complete_ || queued_bytes_ > 0;
    const uint64_t idle_for = now - last_activity_ms_;
    if (!waiting_on_client || idle_for < idle_timeout) {
      arm_timer(waiting_on_client ? idle_timeout - idle_for : idle_timeout);
      return;
    }
    spdlog::debug("{}: client inactive for {} ms mid-request; closing", peer_address_, idle_for);
    close();
    return;
  }
  if (parser_.in_message() || !served_any_ || !pending_input_.empty()) {
    if (now < head_deadline_ms_) {
      arm_timer(head_deadline_ms_ - now);
      return;
    }
    spdlog::debug("{}: request head not complete within limits.header_timeout", peer_address_);
    reject(408, "request header timeout", parser_.in_message() || !pending_input_.empty());
    return;
  }
  const uint64_t idle_for = now - last_activity_ms_;
  if (idle_for < idle_timeout) {
    arm_timer(idle_timeout - idle_for);
    return;
  }
  close();  // an idle keep-alive connection: a silent close is the convention
}

void ClientConnection::begin_drain() {
  draining_ = true;
  if (state_ == State::Open && exchange_ == nullptr && !parser_.in_message() &&
      pending_input_.empty() && pending_writes_ == 0) {
    close();
  }
}

void ClientConnection::close_gracefully() {
  if (state_ != State::Open) {
    return;
  }
  state_ = State::Lingering;
  const int rc =
      uv_shutdown(&shutdown_request_, reinterpret_cast<uv_stream_t*>(&socket_), on_shutdown);
  if (rc != 0) {
    close();
    return;
  }
  paused_by_exchange_ = false;
  update_reading();
  timer_due_ms_ = uv_now(worker_.loop()) + kLingerMs;
  uv_timer_start(&timer_, on_timer, kLingerMs, 0);
}

void ClientConnection::on_shutdown(uv_shutdown_t* request, int status) {
  auto* self = owner_of<ClientConnection>(request);
  if (status != 0 && self->state_ == State::Lingering) {
    self->close();
  }
}

void ClientConnection::close() {
  if (state_ == State::Closing) {
    return;
  }
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

void ClientConnection::on_closed(uv_handle_t* handle) {
  auto* self = owner_of<ClientConnection>(handle);
  if (--self->open_handles_ == 0) {
    delete self;
  }
}

}  // namespace cachecar
