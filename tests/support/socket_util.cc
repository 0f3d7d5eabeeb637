#include "support/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cachecar::test {

namespace {

constexpr size_t kReadChunk = 64 * 1024;

IoStatus status_from_errno(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT) {
    return IoStatus::Timeout;
  }
  if (err == ECONNRESET || err == EPIPE) {
    return IoStatus::Reset;
  }
  return IoStatus::Error;
}

timeval to_timeval(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  return tv;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    reset(other.release());
  }
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

std::string_view to_string(IoStatus status) {
  switch (status) {
    case IoStatus::Ok:
      return "ok";
    case IoStatus::Eof:
      return "connection closed by peer";
    case IoStatus::Timeout:
      return "timed out";
    case IoStatus::Reset:
      return "connection reset";
    case IoStatus::Error:
      return "socket error";
    case IoStatus::Malformed:
      return "malformed data";
    case IoStatus::TooLarge:
      return "message too large";
  }
  return "unknown";
}

std::string errno_message(std::string_view what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

ConnectResult try_connect_loopback(int port, std::chrono::milliseconds timeout) {
  ConnectResult result;
  const std::string where = "connect to 127.0.0.1:" + std::to_string(port);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    result.error = errno_message("socket", errno);
    return result;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      result.error = errno_message(where, errno);
      return result;
    }
    pollfd pfd{fd.get(), POLLOUT, 0};
    int ready = 0;
    do {
      ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
      result.error = where + ": timed out after " + std::to_string(timeout.count()) + " ms";
      return result;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (ready < 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
      result.error = errno_message(where, errno);
      return result;
    }
    if (so_error != 0) {
      result.error = errno_message(where, so_error);
      return result;
    }
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  set_nodelay(fd.get());
  result.fd = std::move(fd);
  return result;
}

UniqueFd connect_loopback(int port, std::chrono::milliseconds timeout) {
  ConnectResult result = try_connect_loopback(port, timeout);
  if (!result.fd.valid()) {
    throw std::runtime_error(result.error);
  }
  return std::move(result.fd);
}

void set_io_timeout(int fd, std::chrono::milliseconds timeout) {
  const timeval tv = to_timeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void set_nodelay(int fd) {
  // Tests send heads and bodies in separate writes and time them (slow headers); Nagle would
  // hold the second write back for an ACK and blur those timings.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

IoStatus send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return status_from_errno(errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return IoStatus::Ok;
}

IoStatus SocketReader::fill() {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  const size_t old_size = buffer_.size();
  buffer_.resize(old_size + kReadChunk);
  ssize_t n = 0;
  do {
    n = ::recv(fd_, buffer_.data() + old_size, kReadChunk, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    buffer_.resize(old_size);
    if (n == 0) {
      return IoStatus::Eof;
    }
    last_errno_ = errno;
    return status_from_errno(last_errno_);
  }
  buffer_.resize(old_size + static_cast<size_t>(n));
  return IoStatus::Ok;
}

std::string_view SocketReader::buffered() const { return std::string_view(buffer_).substr(start_); }

void SocketReader::consume(size_t n) {
  start_ += n;
  if (start_ >= buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

ReadResult SocketReader::read_until(std::string_view delimiter, size_t max_bytes) {
  size_t searched = 0;  // no need to rescan bytes that cannot start the delimiter
  while (true) {
    const std::string_view data = buffered();
    const size_t found = data.find(delimiter, searched);
    if (found != std::string_view::npos) {
      ReadResult result{IoStatus::Ok, std::string(data.substr(0, found))};
      consume(found + delimiter.size());
      return result;
    }
    if (data.size() > max_bytes) {
      return {IoStatus::TooLarge, {}};
    }
    searched = data.size() >= delimiter.size() ? data.size() - delimiter.size() + 1 : 0;
    const IoStatus status = fill();
    if (status != IoStatus::Ok) {
      return {status, std::string(buffered())};
    }
  }
}

IoStatus SocketReader::read_exact(size_t n, const ByteSink& sink) {
  while (n > 0) {
    if (buffered().empty()) {
      const IoStatus status = fill();
      if (status != IoStatus::Ok) {
        return status;
      }
    }
    const std::string_view piece = buffered().substr(0, n);
    sink(piece);
    n -= piece.size();
    consume(piece.size());
  }
  return IoStatus::Ok;
}

IoStatus SocketReader::read_to_eof(const ByteSink& sink) {
  while (true) {
    if (!buffered().empty()) {
      sink(buffered());
      consume(buffered().size());
    }
    const IoStatus status = fill();
    if (status != IoStatus::Ok) {
      return status;
    }
  }
}

}  // namespace cachecar::test
