#include "support/test_upstream.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace cachecar::test {

namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxRequestHead = 1024 * 1024;
constexpr size_t kPatternLine = 64;
constexpr size_t kBodyPiece = 64 * 1024;
constexpr size_t kChunkSize = 16 * 1024;
constexpr auto kLingerTime = 2000ms;
constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// Line number `line` of the pattern: its byte offset as 16 digits, a space, 46 letters
// rotated by the line number, and a newline.
void make_pattern_line(uint64_t line, char* out) {
  uint64_t offset = line * kPatternLine;
  for (int i = 15; i >= 0; --i) {
    out[i] = static_cast<char>('0' + offset % 10);
    offset /= 10;
  }
  out[16] = ' ';
  for (size_t j = 17; j < kPatternLine - 1; ++j) {
    out[j] = kLetters[(line + j) % kLetters.size()];
  }
  out[kPatternLine - 1] = '\n';
}

std::string hex(size_t value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%zx", value);
  return buffer;
}

std::string simple_response(int status, std::string_view error) {
  const std::string body = "{\"error\":\"" + json_escape(error) + "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

UpstreamReply default_reply(const ReceivedRequest& request) {
  UpstreamReply reply;
  reply.headers = {{"Content-Type", "application/json"}};
  reply.body = "{\"method\":\"" + json_escape(request.method) + "\",\"target\":\"" +
               json_escape(request.target) + "\"}";
  return reply;
}

// Splits "METHOD target HTTP/1.x" into the request's fields.
bool parse_request_line(std::string_view line, ReceivedRequest& request) {
  const size_t first = line.find(' ');
  const size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == 0 || last == first) {
    return false;
  }
  request.method = line.substr(0, first);
  request.target = line.substr(first + 1, last - first - 1);
  request.version = line.substr(last + 1);
  return !request.target.empty() && request.target.find(' ') == std::string::npos &&
         (request.version == "HTTP/1.1" || request.version == "HTTP/1.0");
}

// Waits until the kernel has delivered (and the peer acknowledged) everything we sent,
// because a RST discards unsent data and a "reset mid-body" must reset *after* the half body.
void wait_send_queue_empty(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  int pending = 0;
  while (::ioctl(fd, SIOCOUTQ, &pending) == 0 && pending > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
}

// Writes `bytes` in the segments that `cuts` (ascending offsets) delimit. Offsets outside
// (0, size) add no segment.
IoStatus send_segments(int fd, std::string_view bytes, const std::vector<size_t>& cuts,
                       bool wait_between) {
  size_t start = 0;
  for (const size_t cut : cuts) {
    if (cut <= start || cut >= bytes.size()) {
      continue;
    }
    if (const IoStatus status = send_all(fd, bytes.substr(start, cut - start));
        status != IoStatus::Ok) {
      return status;
    }
    if (wait_between) {
      // Bounded: a peer that stopped reading (back-pressure) must not stall the reply.
      wait_until_peer_read(fd, 200ms);
    }
    start = cut;
  }
  return send_all(fd, bytes.substr(start));
}

}  // namespace

std::string pattern_chunk(uint64_t offset, size_t length) {
  std::string out;
  out.reserve(length);
  uint64_t line = offset / kPatternLine;
  size_t skip = static_cast<size_t>(offset % kPatternLine);
  char buffer[kPatternLine];
  while (out.size() < length) {
    make_pattern_line(line, buffer);
    const size_t take = std::min(kPatternLine - skip, length - out.size());
    out.append(buffer + skip, take);
    skip = 0;
    ++line;
  }
  return out;
}

uint64_t pattern_checksum(uint64_t length) {
  uint64_t hash = kFnv1aOffsetBasis;
  for (uint64_t offset = 0; offset < length; offset += kBodyPiece) {
    hash = fnv1a(
        pattern_chunk(offset, static_cast<size_t>(std::min<uint64_t>(kBodyPiece, length - offset))),
        hash);
  }
  return hash;
}

TestUpstream::TestUpstream(int port, std::string bind_address)
    : bind_address_(std::move(bind_address)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, bind_address_.c_str(), &addr.sin_addr) != 1) {
    throw std::runtime_error("TestUpstream: invalid IPv4 bind address '" + bind_address_ + "'");
  }
  const std::string where = "TestUpstream: bind " + bind_address_ + ":" + std::to_string(port);
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener_.valid()) {
    throw std::runtime_error(errno_message("TestUpstream: socket", errno));
  }
  // A fixed port (product_api --port 3000) must be reusable right after a restart.
  const int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(errno_message(where, errno));
  }
  if (::listen(listener_.get(), SOMAXCONN) != 0) {
    throw std::runtime_error(errno_message(where + ": listen", errno));
  }
  socklen_t len = sizeof addr;
  if (::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(errno_message(where + ": getsockname", errno));
  }
  port_ = ntohs(addr.sin_port);
  wake_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!wake_.valid()) {
    throw std::runtime_error(errno_message("TestUpstream: eventfd", errno));
  }
  handler_ = default_reply;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

TestUpstream::~TestUpstream() { stop(); }

std::string TestUpstream::url() const {
  const std::string host = bind_address_ == "0.0.0.0" ? "127.0.0.1" : bind_address_;
  return "http://" + host + ":" + std::to_string(port_);
}

void TestUpstream::set_handler(UpstreamHandler handler) {
  std::lock_guard lock(mutex_);
  handler_ = handler ? std::move(handler) : UpstreamHandler(default_reply);
}

void TestUpstream::set_discard_bodies(bool discard) {
  std::lock_guard lock(mutex_);
  discard_bodies_ = discard;
}

std::vector<ReceivedRequest> TestUpstream::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::optional<ReceivedRequest> TestUpstream::last_request() const {
  std::lock_guard lock(mutex_);
  if (requests_.empty()) {
    return std::nullopt;
  }
  return requests_.back();
}

size_t TestUpstream::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

size_t TestUpstream::connection_count() const {
  std::lock_guard lock(mutex_);
  return connection_count_;
}

void TestUpstream::reset_counters() {
  std::lock_guard lock(mutex_);
  requests_.clear();
  connection_count_ = 0;
}

bool TestUpstream::wait_for_requests(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void TestUpstream::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (accept_thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
    accept_thread_.join();
  }
  listener_.reset();
  // No new connections can appear now that the accept thread is gone.
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard lock(mutex_);
    connections.swap(connections_);
  }
  for (const auto& connection : connections) {
    std::lock_guard lock(connection->mutex);
    if (connection->fd >= 0) {
      // Wakes the connection's thread from recv/send/poll; it closes the fd itself.
      ::shutdown(connection->fd, SHUT_RDWR);
    }
  }
  for (const auto& connection : connections) {
    connection->thread.join();
  }
}

bool TestUpstream::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool TestUpstream::wait_or_stop(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  if (duration <= 0ms) {
    return !stopping_;
  }
  return !changed_.wait_for(lock, duration, [this] { return stopping_; });
}

void TestUpstream::accept_loop() {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (true) {
    // The timeout only paces the reaping of finished connections; stop() wakes us.
    const int ready = ::poll(fds, 2, 1000);
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "TestUpstream: poll: %s\n", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    reap_finished_connections();
    if (ready <= 0 || (fds[0].revents & POLLIN) == 0) {
      continue;
    }
    const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // Out of fds: back off instead of spinning on a listener that stays readable.
        std::this_thread::sleep_for(10ms);
      }
      continue;
    }
    set_nodelay(fd);
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->id = next_connection_id_++;
    connection->fd = fd;
    ++connection_count_;
    Connection& ref = *connection;
    connections_.push_back(std::move(connection));
    ref.thread = std::thread([this, &ref] {
      serve(ref);
      close_fd(ref);
      ref.finished = true;
    });
  }
}

void TestUpstream::reap_finished_connections() {
  std::lock_guard lock(mutex_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->finished) {
      (*it)->thread.join();  // the thread is past its last statement, so this is quick
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void TestUpstream::record(ReceivedRequest request) {
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
  }
  changed_.notify_all();
}

void TestUpstream::close_fd(Connection& connection) {
  std::lock_guard lock(connection.mutex);
  if (connection.fd >= 0) {
    ::close(connection.fd);
    connection.fd = -1;
  }
}

void TestUpstream::reset_close(Connection& connection) {
  std::lock_guard lock(connection.mutex);
  if (connection.fd >= 0) {
    const linger abort_on_close{1, 0};
    ::setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    ::close(connection.fd);
    connection.fd = -1;
  }
}

void TestUpstream::lingering_close(Connection& connection) {
  int fd = -1;
  {
    std::lock_guard lock(connection.mutex);
    fd = connection.fd;
  }
  if (fd >= 0) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
    char discard[16 * 1024];
    while (true) {
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (remaining <= 0ms) {
        break;
      }
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(remaining.count()));
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready <= 0 || ::recv(fd, discard, sizeof discard, 0) <= 0) {
        break;
      }
    }
  }
  close_fd(connection);
}

void TestUpstream::serve(Connection& connection) {
  int fd = -1;
  {
    std::lock_guard lock(connection.mutex);
    fd = connection.fd;  // stays open until this thread closes it
  }
  SocketReader reader(fd);
  while (true) {
    const ReadResult head = reader.read_until("\r\n\r\n", kMaxRequestHead);
    if (head.status == IoStatus::TooLarge) {
      send_all(fd, simple_response(431, "request head too large"));
      lingering_close(connection);
      return;
    }
    if (head.status != IoStatus::Ok) {
      return;  // the client closed or reset (or stop() shut the socket down)
    }
    ReceivedRequest request;
    request.connection_id = connection.id;
    const std::optional<ParsedHead> parsed = parse_head(head.text);
    if (!parsed || !parse_request_line(parsed->start_line, request)) {
      send_all(fd, simple_response(400, "malformed request head"));
      lingering_close(connection);
      return;
    }
    request.headers = parsed->headers;

    size_t length = 0;
    if (find_header(request.headers, "Transfer-Encoding")) {
      // RFC 9112 §6.3: a request whose last coding is not chunked cannot be framed.
      if (!is_chunked(request.headers)) {
        send_all(fd, simple_response(400, "unsupported transfer coding"));
        lingering_close(connection);
        return;
      }
      request.chunked = true;
    } else {
      const ContentLengthField field = content_length(request.headers);
      if (field.state == ContentLength::Invalid) {
        send_all(fd, simple_response(400, "invalid Content-Length"));
        lingering_close(connection);
        return;
      }
      length = field.value;
    }
    if ((request.chunked || length > 0) &&
        header_has_token(request.headers, "Expect", "100-continue")) {
      send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    bool discard = false;
    {
      std::lock_guard lock(mutex_);
      discard = discard_bodies_;
    }
    const ByteSink sink = [&request, discard](std::string_view piece) {
      request.body_size += piece.size();
      request.body_checksum = fnv1a(piece, request.body_checksum);
      if (!discard) {
        request.body.append(piece);
      }
    };
    const IoStatus body_status = request.chunked ? read_chunked_body(reader, sink, request.trailers)
                                                 : reader.read_exact(length, sink);
    if (body_status == IoStatus::Malformed || body_status == IoStatus::TooLarge) {
      send_all(fd, simple_response(400, "malformed chunked body"));
      lingering_close(connection);
      return;
    }
    if (body_status != IoStatus::Ok) {
      return;  // the client went away mid-body
    }
    request.received_at = std::chrono::steady_clock::now();

    const bool keep_alive = request.version == "HTTP/1.1"
                                ? !header_has_token(request.headers, "Connection", "close")
                                : header_has_token(request.headers, "Connection", "keep-alive");
    UpstreamHandler handler;
    {
      std::lock_guard lock(mutex_);
      handler = handler_;
    }
    record(request);
    UpstreamReply reply;
    try {
      reply = handler(request);
    } catch (const std::exception& error) {
      reply = UpstreamReply{};
      reply.status = 500;
      reply.headers = {{"Content-Type", "application/json"}};
      reply.body = "{\"error\":\"test handler threw: " + json_escape(error.what()) + "\"}";
    }
    if (!keep_alive) {
      reply.close_after = true;
    }
    if (!wait_or_stop(reply.delay)) {
      return;
    }
    switch (send_reply(connection, request, reply)) {
      case AfterReply::KeepAlive:
        break;
      case AfterReply::Close:
        lingering_close(connection);
        return;
      case AfterReply::Gone:
        return;
    }
  }
}

TestUpstream::AfterReply TestUpstream::send_reply(Connection& connection,
                                                  const ReceivedRequest& request,
                                                  const UpstreamReply& reply) {
  int fd = -1;
  {
    std::lock_guard lock(connection.mutex);
    fd = connection.fd;
  }
  switch (reply.fault) {
    case UpstreamReply::Fault::ResetBeforeResponse:
      reset_close(connection);
      return AfterReply::Gone;
    case UpstreamReply::Fault::CloseBeforeResponse:
      lingering_close(connection);
      return AfterReply::Gone;
    case UpstreamReply::Fault::Garbage:
      send_all(fd, "this is not http\r\n\r\n");
      lingering_close(connection);
      return AfterReply::Gone;
    case UpstreamReply::Fault::NoResponse: {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_; });
      return AfterReply::Gone;
    }
    case UpstreamReply::Fault::None:
    case UpstreamReply::Fault::ResetMidBody:
    case UpstreamReply::Fault::SlowHeaders:
      break;
  }

  const bool segmented = reply.fault == UpstreamReply::Fault::None && reply.split_at.has_value();
  const std::vector<size_t> no_cuts;
  const std::vector<size_t>& cuts = segmented ? *reply.split_at : no_cuts;
  if (reply.raw && reply.fault == UpstreamReply::Fault::None) {
    if (send_segments(fd, *reply.raw, cuts, reply.wait_between_segments) != IoStatus::Ok) {
      return AfterReply::Gone;
    }
    return reply.close_after ? AfterReply::Close : AfterReply::KeepAlive;
  }

  const bool generated = reply.generated_body_bytes > 0;
  const size_t body_length = generated ? reply.generated_body_bytes : reply.body.size();
  // RFC 9110 §6.4.1: 1xx, 204 and 304 never have content; HEAD gets the head only.
  const bool bodiless_status =
      (reply.status >= 100 && reply.status < 200) || reply.status == 204 || reply.status == 304;
  const bool send_body = request.method != "HEAD" && !bodiless_status;
  const bool close = reply.close_after || reply.omit_content_length;

  std::string pending;  // the whole reply, when it is segmented
  std::vector<std::string> lines;
  lines.push_back("HTTP/1.1 " + std::to_string(reply.status) + " " +
                  std::string(reason_phrase(reply.status)));
  for (const auto& [name, value] : reply.headers) {
    lines.push_back(name + ": " + value);
  }
  const bool framed_by_test = find_header(reply.headers, "Content-Length") ||
                              find_header(reply.headers, "Transfer-Encoding");
  if (!bodiless_status && !framed_by_test) {
    if (reply.chunked) {
      lines.emplace_back("Transfer-Encoding: chunked");
    } else if (!reply.omit_content_length) {
      lines.push_back("Content-Length: " + std::to_string(body_length));
    }
  }
  if (close && !find_header(reply.headers, "Connection")) {
    lines.emplace_back("Connection: close");
  }

  if (reply.fault == UpstreamReply::Fault::SlowHeaders) {
    for (const std::string& line : lines) {
      if (&line != &lines.front() && !wait_or_stop(reply.header_interval)) {
        return AfterReply::Gone;
      }
      if (send_all(fd, line + "\r\n") != IoStatus::Ok) {
        return AfterReply::Gone;
      }
    }
    if (!wait_or_stop(reply.header_interval) || send_all(fd, "\r\n") != IoStatus::Ok) {
      return AfterReply::Gone;
    }
  } else {
    std::string head;
    for (const std::string& line : lines) {
      head += line;
      head += "\r\n";
    }
    head += "\r\n";
    if (segmented) {
      pending = std::move(head);
    } else if (send_all(fd, head) != IoStatus::Ok) {
      return AfterReply::Gone;
    }
  }
  // Body pieces are appended to `pending` instead of being sent when the reply is segmented.
  auto emit = [&](std::string_view bytes) {
    if (segmented) {
      pending.append(bytes);
      return IoStatus::Ok;
    }
    return send_all(fd, bytes);
  };
  auto flush = [&] {
    if (segmented &&
        send_segments(fd, pending, cuts, reply.wait_between_segments) != IoStatus::Ok) {
      return AfterReply::Gone;
    }
    return close ? AfterReply::Close : AfterReply::KeepAlive;
  };
  if (!send_body) {
    return flush();
  }

  auto body_piece = [&](size_t offset, size_t length) {
    return generated ? pattern_chunk(offset, length) : reply.body.substr(offset, length);
  };
  if (reply.fault == UpstreamReply::Fault::ResetMidBody) {
    const size_t half = body_length / 2;
    std::string partial = reply.chunked ? hex(body_length) + "\r\n" : std::string();
    for (size_t offset = 0; offset < half; offset += kBodyPiece) {
      partial += body_piece(offset, std::min(kBodyPiece, half - offset));
      if (send_all(fd, partial) != IoStatus::Ok) {
        return AfterReply::Gone;
      }
      partial.clear();
    }
    if (!partial.empty()) {
      send_all(fd, partial);
    }
    wait_send_queue_empty(fd);
    reset_close(connection);
    return AfterReply::Gone;
  }

  const size_t piece_size = reply.chunked ? kChunkSize : kBodyPiece;
  for (size_t offset = 0; offset < body_length; offset += piece_size) {
    const size_t length = std::min(piece_size, body_length - offset);
    std::string piece = body_piece(offset, length);
    if (reply.chunked) {
      piece = hex(length) + "\r\n" + piece + "\r\n";
    }
    if (emit(piece) != IoStatus::Ok) {
      return AfterReply::Gone;
    }
  }
  if (reply.chunked && emit("0\r\n\r\n") != IoStatus::Ok) {
    return AfterReply::Gone;
  }
  return flush();
}

}  // namespace cachecar::test
