#include "support/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
// Not <netinet/tcp.h>: glibc's struct tcp_info stops before the byte counters used here.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

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

namespace {

// What the kernel says of the socket at the other end of a loopback connection.
struct PeerState {
  size_t unread = 0;                 // received, not yet read by its owner
  std::optional<uint64_t> received;  // in-order bytes received, where the kernel reports it
};

// One exact-match sock_diag query (no dump), so the cost does not grow with the number of
// sockets on the machine. nullopt if the kernel does not answer it.
std::optional<PeerState> peer_state(int fd) {
  sockaddr_in local{};
  sockaddr_in remote{};
  socklen_t length = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
      local.sin_family != AF_INET) {
    return std::nullopt;
  }
  length = sizeof remote;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &length) != 0) {
    return std::nullopt;
  }
  const UniqueFd diag(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!diag.valid()) {
    return std::nullopt;
  }
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } query{};
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = AF_INET;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  query.request.idiag_states = ~0U;
  // The peer's socket: its source is our destination.
  query.request.id.idiag_sport = remote.sin_port;
  query.request.id.idiag_dport = local.sin_port;
  query.request.id.idiag_src[0] = remote.sin_addr.s_addr;
  query.request.id.idiag_dst[0] = local.sin_addr.s_addr;
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (::send(diag.get(), &query, sizeof query, 0) != static_cast<ssize_t>(sizeof query)) {
    return std::nullopt;
  }
  alignas(nlmsghdr) char buffer[8192];
  const ssize_t n = ::recv(diag.get(), buffer, sizeof buffer, 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) {
    return std::nullopt;
  }
  const auto* reply = reinterpret_cast<const nlmsghdr*>(buffer);
  if (!NLMSG_OK(reply, static_cast<unsigned>(n)) || reply->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
      reply->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return std::nullopt;  // NLMSG_ERROR: no such socket, or sock_diag unavailable
  }
  const auto* message = static_cast<const inet_diag_msg*>(NLMSG_DATA(reply));
  PeerState state;
  state.unread = message->idiag_rqueue;
  auto attributes_length = static_cast<int>(reply->nlmsg_len - NLMSG_LENGTH(sizeof *message));
  for (auto* attribute = reinterpret_cast<const rtattr*>(message + 1);
       RTA_OK(attribute, attributes_length); attribute = RTA_NEXT(attribute, attributes_length)) {
    constexpr size_t kNeeded = offsetof(tcp_info, tcpi_bytes_received) + sizeof(uint64_t);
    if (attribute->rta_type == INET_DIAG_INFO && RTA_PAYLOAD(attribute) >= kNeeded) {
      tcp_info info{};
      std::memcpy(&info, RTA_DATA(attribute),
                  std::min<size_t>(RTA_PAYLOAD(attribute), sizeof info));
      state.received = info.tcpi_bytes_received;
    }
  }
  return state;
}

// New data bytes this socket has transmitted, or nullopt if some are still queued unsent or
// the kernel is too old to count them.
std::optional<uint64_t> bytes_transmitted(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 ||
      length < offsetof(tcp_info, tcpi_bytes_retrans) + sizeof(uint64_t) ||
      info.tcpi_notsent_bytes != 0) {
    return std::nullopt;
  }
  return info.tcpi_bytes_sent - info.tcpi_bytes_retrans;
}

// Whether everything sent on `fd` has reached the peer's receive queue. Compared as byte
// counts where the kernel has them: an acknowledgement would say the same, but a peer in
// delayed-ACK mode sends it up to 40 ms late.
bool delivered(int fd, const PeerState& peer) {
  if (peer.received) {
    const std::optional<uint64_t> sent = bytes_transmitted(fd);
    return sent && *sent == *peer.received;
  }
  int unacknowledged = 0;
  return ::ioctl(fd, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged == 0;
}

}  // namespace

bool wait_until_peer_read(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const std::optional<PeerState> peer = peer_state(fd);
    if (!peer) {
      return false;
    }
    if (peer->unread == 0 && delivered(fd, *peer)) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
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
