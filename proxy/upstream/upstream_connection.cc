#include "upstream/upstream_connection.h"

#include <spdlog/spdlog.h>

#include "upstream/pool.h"
#include "uv/handle.h"

namespace cachecar {
namespace {

// Request bytes queued toward the upstream beyond which the client is no longer read: bounds
// memory for a large upload to a slow upstream.
constexpr size_t kHighWatermark = 256 * 1024;
constexpr size_t kLowWatermark = 64 * 1024;

struct UpstreamWrite {
  uv_write_t request{};
  std::string bytes;
};

}  // namespace

UpstreamConnection::UpstreamConnection(UpstreamPool& pool) : pool_(pool), parser_(*this) {}

UpstreamConnection::~UpstreamConnection() = default;

UpstreamConnection* UpstreamConnection::connect(UpstreamPool& pool, const sockaddr* address) {
  auto* connection = new UpstreamConnection(pool);
  uv_loop_t* loop = pool.loop();
  uv_check("uv_tcp_init", uv_tcp_init(loop, &connection->socket_));
  uv_check("uv_timer_init", uv_timer_init(loop, &connection->timer_));
  connection->socket_.data = connection;
  connection->timer_.data = connection;
  connection->connect_request_.data = connection;
  connection->open_handles_ = 2;
  pool.on_opened();
  const int rc =
      uv_tcp_connect(&connection->connect_request_, &connection->socket_, address, on_connect);
  if (rc != 0) {
    spdlog::error("upstream {}: connect: {}", pool.name(), uv_strerror(rc));
    connection->close();
    return nullptr;
  }
  connection->last_activity_ms_ = uv_now(loop);
  connection->arm_timer();
  return connection;
}

void UpstreamConnection::attach(UpstreamHandler& handler, bool head_request) {
  if (state_ == State::Idle) {
    pool_.on_not_idle(this);
    state_ = State::Active;
  }
  handler_ = &handler;
  ++requests_started_;
  response_started_ = false;
  response_complete_ = false;
  request_complete_ = false;
  keep_alive_ = false;
  parser_.expect_response(head_request);
  last_activity_ms_ = uv_now(pool_.loop());
  arm_timer();
}

void UpstreamConnection::send(std::string bytes) {
  if (state_ == State::Closing || bytes.empty()) {
    return;
  }
  auto* write = new UpstreamWrite;
  write->bytes = std::move(bytes);
  write->request.data = this;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  const int rc =
      uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&socket_), &buf, 1, on_write);
  if (rc != 0) {
    delete write;
    // Report the failure from the loop, not from inside the caller's send().
    write_failed_ = true;
    send_error_ = true;
    uv_timer_start(&timer_, on_timer, 0, 0);
    return;
  }
  queued_bytes_ += buf.len;
  if (queued_bytes_ > kHighWatermark) {
    was_congested_ = true;
  }
}

void UpstreamConnection::finish_request() { request_complete_ = true; }

bool UpstreamConnection::congested() const { return queued_bytes_ > kHighWatermark; }

void UpstreamConnection::pause_reading() {
  if (state_ == State::Active && !reading_paused_) {
    reading_paused_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&socket_));
  }
}

void UpstreamConnection::resume_reading() {
  if (state_ == State::Active && reading_paused_) {
    reading_paused_ = false;
    last_activity_ms_ = uv_now(pool_.loop());
    uv_read_start(reinterpret_cast<uv_stream_t*>(&socket_), on_alloc, on_read);
  }
}

void UpstreamConnection::detach() {
  handler_ = nullptr;
  close();
}

void UpstreamConnection::close() {
  if (state_ == State::Closing) {
    return;
  }
  if (state_ == State::Idle) {
    pool_.on_not_idle(this);
  }
  state_ = State::Closing;
  handler_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

void UpstreamConnection::on_closed(uv_handle_t* handle) {
  auto* self = owner_of<UpstreamConnection>(handle);
  if (--self->open_handles_ == 0) {
    self->pool_.on_closed(self);
    delete self;
  }
}

void UpstreamConnection::on_connect(uv_connect_t* request, int status) {
  auto* self = owner_of<UpstreamConnection>(request);
  if (self->state_ == State::Closing) {
    return;
  }
  if (status != 0) {
    spdlog::warn("upstream {}: connect failed: {}", self->pool_.name(), uv_strerror(status));
    self->fail(status == UV_ETIMEDOUT ? UpstreamError::Timeout : UpstreamError::Refused);
    return;
  }
  self->state_ = State::Active;
  uv_tcp_nodelay(&self->socket_, 1);
  self->last_activity_ms_ = uv_now(self->pool_.loop());
  self->arm_timer();
  if (!self->reading_paused_) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->socket_), on_alloc, on_read);
  }
}

void UpstreamConnection::on_alloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  *buf = owner_of<UpstreamConnection>(handle)->pool_.read_buffer();
}

void UpstreamConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = owner_of<UpstreamConnection>(stream);
  if (self->state_ == State::Closing) {
    return;
  }
  if (nread > 0) {
    self->handle_data(std::string_view(buf->base, static_cast<size_t>(nread)));
  } else if (nread == UV_EOF) {
    self->handle_eof();
  } else if (nread < 0) {
    if (self->state_ == State::Idle) {
      self->close();
      return;
    }
    spdlog::debug("upstream {}: read error: {}", self->pool_.name(),
                  uv_strerror(static_cast<int>(nread)));
    self->fail(UpstreamError::Reset);
  }
}

void UpstreamConnection::on_write(uv_write_t* request, int status) {
  auto* write = reinterpret_cast<UpstreamWrite*>(request);
  auto* self = owner_of<UpstreamConnection>(request);
  self->queued_bytes_ -= write->bytes.size();
  delete write;
  if (self->state_ == State::Closing) {
    return;
  }
  if (status != 0) {
    // The upstream may already have answered (e.g. an early 413) before closing its side:
    // leave the verdict to the read side, and never reuse this connection.
    self->write_failed_ = true;
    return;
  }
  self->last_activity_ms_ = uv_now(self->pool_.loop());
  if (self->was_congested_ && self->queued_bytes_ <= kLowWatermark) {
    self->was_congested_ = false;
    if (self->handler_ != nullptr) {
      self->handler_->on_upstream_drained();
    }
  }
}

void UpstreamConnection::on_timer(uv_timer_t* timer) {
  auto* self = owner_of<UpstreamConnection>(timer);
  switch (self->state_) {
    case State::Closing:
      return;
    case State::Connecting:
      spdlog::warn("upstream {}: connect timed out", self->pool_.name());
      self->fail(UpstreamError::Timeout);
      return;
    case State::Idle:
      self->close();
      return;
    case State::Active:
      break;
  }
  if (self->send_error_) {
    self->fail(UpstreamError::Reset);
    return;
  }
  const uint64_t now = uv_now(self->pool_.loop());
  const auto timeout = static_cast<uint64_t>(self->pool_.settings().timeout.count());
  // While cachecar itself stopped reading (the client is slow), the upstream is not late.
  if (self->reading_paused_ || now - self->last_activity_ms_ < timeout) {
    self->arm_timer();
    return;
  }
  spdlog::warn("upstream {}: timed out after {} ms without data", self->pool_.name(), timeout);
  self->fail(UpstreamError::Timeout);
}

void UpstreamConnection::arm_timer() {
  const uint64_t now = uv_now(pool_.loop());
  uint64_t timeout = 0;
  switch (state_) {
    case State::Connecting:
      timeout = static_cast<uint64_t>(pool_.settings().connect_timeout.count());
      break;
    case State::Idle:
      timeout = static_cast<uint64_t>(pool_.settings().idle_timeout.count());
      break;
    case State::Active: {
      const auto limit = static_cast<uint64_t>(pool_.settings().timeout.count());
      const uint64_t elapsed = now - last_activity_ms_;
      timeout = elapsed >= limit ? 1 : limit - elapsed;
      break;
    }
    case State::Closing:
      return;
  }
  uv_timer_start(&timer_, on_timer, timeout, 0);
}

void UpstreamConnection::handle_data(std::string_view data) {
  if (state_ != State::Active || handler_ == nullptr) {
    // An idle connection must stay silent; bytes here mean it is out of step.
    close();
    return;
  }
  response_started_ = true;
  last_activity_ms_ = uv_now(pool_.loop());
  const ParseResult result = parser_.execute(data);
  if (state_ == State::Closing) {
    return;
  }
  switch (result.kind) {
    case ParseResult::Kind::Ok:
      return;
    case ParseResult::Kind::Error:
      spdlog::warn("upstream {}: invalid response: {}", pool_.name(), result.reason);
      fail(UpstreamError::Invalid);
      return;
    case ParseResult::Kind::Paused:
      break;
  }
  parser_.resume();
  if (!response_complete_) {
    return;  // the handler went away mid-callback; close() already ran
  }
  if (result.consumed < data.size()) {
    keep_alive_ = false;  // bytes after a complete response: the stream is out of step
  }
  complete_response();
}

void UpstreamConnection::handle_eof() {
  if (state_ != State::Active || handler_ == nullptr) {
    close();
    return;
  }
  parser_.finish();
  if (state_ == State::Closing) {
    return;
  }
  if (response_complete_) {
    parser_.resume();
    keep_alive_ = false;
    complete_response();
    return;
  }
  fail(UpstreamError::Reset);
}

void UpstreamConnection::complete_response() {
  UpstreamHandler* handler = handler_;
  handler_ = nullptr;
  const bool reusable = keep_alive_ && request_complete_ && !write_failed_;
  if (reusable) {
    become_idle();
  } else {
    close();
  }
  if (handler != nullptr) {
    handler->on_upstream_complete();
  }
}

void UpstreamConnection::become_idle() {
  state_ = State::Idle;
  if (reading_paused_) {
    // An idle connection keeps a read armed so that the upstream's close is noticed.
    reading_paused_ = false;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&socket_), on_alloc, on_read);
  }
  last_activity_ms_ = uv_now(pool_.loop());
  arm_timer();
  pool_.on_idle(this);
}

void UpstreamConnection::fail(UpstreamError error) {
  if (state_ == State::Closing) {
    return;
  }
  UpstreamHandler* handler = handler_;
  const bool retryable = error == UpstreamError::Reset && !response_started_ && reused();
  close();
  if (handler != nullptr) {
    handler->on_upstream_error(error, retryable);
  }
}

ParseStep UpstreamConnection::on_response_head(ResponseHead& head) {
  keep_alive_ = head.keep_alive;
  handler_->on_upstream_head(head);
  return handler_ != nullptr && state_ == State::Active ? ParseStep::Continue : ParseStep::Pause;
}

void UpstreamConnection::on_interim_response(const ResponseHead& head) {
  if (handler_ != nullptr) {
    handler_->on_upstream_interim(head);
  }
}

ParseStep UpstreamConnection::on_response_body(std::string_view chunk) {
  handler_->on_upstream_body(chunk);
  return handler_ != nullptr && state_ == State::Active ? ParseStep::Continue : ParseStep::Pause;
}

ParseStep UpstreamConnection::on_response_complete() {
  response_complete_ = true;
  return ParseStep::Pause;
}

}  // namespace cachecar
