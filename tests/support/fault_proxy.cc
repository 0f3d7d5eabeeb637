#include "support/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace cachecar::test {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kReadChunk = 64 * 1024;
// Per direction. Past this many queued bytes the source is no longer read, so TCP pushes back
// on the sender and a slow reader or a long Delay costs bounded memory.
constexpr size_t kMaxQueuedBytes = 1024 * 1024;
// How long accept() is left alone after running out of fds, instead of spinning on a listener
// that stays readable.
constexpr auto kAcceptBackoff = 10ms;

sockaddr_in loopback_address(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

struct SocketResult {
  UniqueFd fd;        // valid on success
  std::string error;  // why it failed otherwise
};

// A non-blocking socket bound to 127.0.0.1:port (0: any free port), not yet listening.
SocketResult bind_loopback(int port) {
  SocketResult result;
  const std::string where = "FaultProxy: bind 127.0.0.1:" + std::to_string(port);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    result.error = errno_message("FaultProxy: socket", errno);
    return result;
  }
  // The port is bound again after Refuse while connections that went through it may still be
  // in TIME_WAIT.
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in addr = loopback_address(port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    result.error = errno_message(where, errno);
    return result;
  }
  result.fd = std::move(fd);
  return result;
}

// SO_LINGER 0, then close: the peer gets a RST instead of a FIN, and unsent data is dropped.
void reset_close(UniqueFd& fd) {
  if (fd.valid()) {
    const linger abort_on_close{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    fd.reset();
  }
}

int poll_timeout_ms(Clock::duration wait) {
  // Rounded up: waking a little early would only find nothing due and poll again.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  return static_cast<int>(std::clamp<decltype(ms)>(ms, 0, INT_MAX));
}

}  // namespace

// One proxied TCP connection: the client's end, the end connected to the target, and a queue
// for each direction. Touched only by the loop thread. Any I/O error resets both ends; a clean
// close (a FIN from each side, forwarded) closes each end once it has nothing left to do.
struct FaultProxy::Connection {
  struct Chunk {
    Clock::time_point due;  // when it may be written
    std::string bytes;      // empty for the FIN
    bool eof = false;       // the source's FIN, forwarded as shutdown(SHUT_WR)
  };
  // One direction: bytes read from one end, waiting to be written to the other.
  struct Pipe {
    std::deque<Chunk> chunks;
    size_t queued_bytes = 0;
    size_t head_written = 0;  // bytes of chunks.front() already written
  };
  struct End {
    UniqueFd fd;               // closed once read_closed && write_shut, or on reset
    bool read_closed = false;  // EOF read: nothing more comes from this end
    bool write_shut = false;   // FIN forwarded: nothing more goes to this end
  };

  End client;
  End upstream;  // no fd for connections accepted under Blackhole, which never forward
  bool upstream_connected = false;
  Pipe to_upstream;
  Pipe to_client;
  bool dead = false;  // both ends closed; the loop drops the connection

  void reset() {
    reset_close(client.fd);
    reset_close(upstream.fd);
    dead = true;
  }

  // Writes every chunk that is due, in order, until the sockets would block.
  void flush(Clock::time_point now) {
    if (dead) {
      return;
    }
    if ((upstream_connected && !flush_pipe(to_upstream, upstream, now)) ||
        !flush_pipe(to_client, client, now)) {
      reset();
      return;
    }
    close_finished_ends();
  }

  short client_events(Clock::time_point now) const {
    return end_events(client, to_upstream, to_client, now);
  }

  short upstream_events(Clock::time_point now) const {
    if (!upstream_connected) {
      return POLLOUT;  // the non-blocking connect completes (or fails)
    }
    return end_events(upstream, to_client, to_upstream, now);
  }

  // The earliest time a queued chunk becomes due, if any is still in the future.
  std::optional<Clock::time_point> next_due(Clock::time_point now) const {
    std::optional<Clock::time_point> next;
    for (const Pipe* pipe : {&to_upstream, &to_client}) {
      if (!pipe->chunks.empty() && pipe->chunks.front().due > now) {
        const Clock::time_point due = pipe->chunks.front().due;
        next = next ? std::min(*next, due) : due;
      }
    }
    return next;
  }

  // Handles what poll() reported for the two ends. Chunks read now are due at `due`.
  void on_events(short client_revents, short upstream_revents, Clock::time_point due) {
    if (((client_revents | upstream_revents) & (POLLERR | POLLNVAL)) != 0) {
      reset();
      return;
    }
    if (!upstream_connected && upstream_revents != 0) {
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(upstream.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 ||
          error != 0 || (upstream_revents & POLLHUP) != 0) {
        reset();  // the target is down: the client must not wait on a connection to nowhere
        return;
      }
      upstream_connected = true;
    }
    if (!receive(client, to_upstream, client_revents, due) ||
        (upstream_connected && !receive(upstream, to_client, upstream_revents, due))) {
      reset();
      return;
    }
    close_finished_ends();
  }

 private:
  static bool due_head(const Pipe& pipe, Clock::time_point now) {
    return !pipe.chunks.empty() && pipe.chunks.front().due <= now;
  }

  static short end_events(const End& end, const Pipe& from_end, const Pipe& to_end,
                          Clock::time_point now) {
    short events = 0;
    if (!end.read_closed && from_end.queued_bytes < kMaxQueuedBytes) {
      events = static_cast<short>(events | POLLIN);
    }
    // flush() ran just before with the same `now`, so a due chunk still queued means the
    // socket was full.
    if (due_head(to_end, now)) {
      events = static_cast<short>(events | POLLOUT);
    }
    return events;
  }

  // False on a write error.
  static bool flush_pipe(Pipe& pipe, End& to, Clock::time_point now) {
    while (to.fd.valid() && due_head(pipe, now)) {
      Chunk& head = pipe.chunks.front();
      if (head.eof) {
        // Half-close, as the source did: the target may still answer what it was sent.
        ::shutdown(to.fd.get(), SHUT_WR);
        to.write_shut = true;
        pipe.chunks.pop_front();
        continue;
      }
      const ssize_t n = ::send(to.fd.get(), head.bytes.data() + pipe.head_written,
                               head.bytes.size() - pipe.head_written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK;  // full: poll() waits for POLLOUT
      }
      pipe.head_written += static_cast<size_t>(n);
      pipe.queued_bytes -= static_cast<size_t>(n);
      if (pipe.head_written == head.bytes.size()) {
        pipe.chunks.pop_front();
        pipe.head_written = 0;
      }
    }
    return true;
  }

  // Reads what `revents` says is there into `into`. False on a read error.
  static bool receive(End& from, Pipe& into, short revents, Clock::time_point due) {
    if ((revents & (POLLIN | POLLHUP)) == 0) {
      return true;
    }
    if (from.read_closed) {
      return false;  // POLLHUP on an end with nothing left to read: it is gone
    }
    // POLLHUP means the peer will send nothing more, yet it is reported whatever we ask for:
    // read to the EOF now, past the queue limit (by at most one socket buffer), so that poll()
    // does not keep returning it.
    const bool to_eof = (revents & POLLHUP) != 0;
    char buffer[kReadChunk];
    do {
      const ssize_t n = ::recv(from.fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      if (n == 0) {
        from.read_closed = true;
        into.chunks.push_back(Chunk{due, {}, true});
        return true;
      }
      into.chunks.push_back(Chunk{due, std::string(buffer, static_cast<size_t>(n)), false});
      into.queued_bytes += static_cast<size_t>(n);
    } while (to_eof);
    return true;
  }

  void close_finished_ends() {
    for (End* end : {&client, &upstream}) {
      if (end->fd.valid() && end->read_closed && end->write_shut) {
        end->fd.reset();
      }
    }
    if (!client.fd.valid() && !upstream.fd.valid()) {
      dead = true;
    }
  }
};

FaultProxy::FaultProxy(int target_port) : target_port_(target_port) {
  SocketResult bound = bind_loopback(0);
  if (!bound.fd.valid()) {
    throw std::runtime_error(bound.error);
  }
  listener_ = std::move(bound.fd);
  if (::listen(listener_.get(), SOMAXCONN) != 0) {
    throw std::runtime_error(errno_message("FaultProxy: listen", errno));
  }
  listening_ = true;
  sockaddr_in addr{};
  socklen_t length = sizeof addr;
  if (::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    throw std::runtime_error(errno_message("FaultProxy: getsockname", errno));
  }
  port_ = ntohs(addr.sin_port);
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) {
    throw std::runtime_error(errno_message("FaultProxy: eventfd", errno));
  }
  loop_running_ = true;
  loop_thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() { stop(); }

std::string FaultProxy::redis_url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

void FaultProxy::set_fault(Fault fault, std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  if (stopping_) {
    return;
  }
  if (!loop_running_) {
    throw std::runtime_error("FaultProxy: the loop thread has failed (see stderr)");
  }
  requests_.push_back(Request{fault, std::max(delay, std::chrono::milliseconds(0))});
  const uint64_t ticket = ++requested_;
  wake();
  applied_changed_.wait(lock, [&] { return applied_ >= ticket || !loop_running_; });
  if (applied_ >= ticket && fault != Fault::Refuse && !listen_error_.empty()) {
    throw std::runtime_error(listen_error_);
  }
}

void FaultProxy::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  if (loop_thread_.joinable()) {
    wake();
    loop_thread_.join();  // the loop closes every socket on its way out
  }
}

void FaultProxy::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
}

bool FaultProxy::apply_requests() {
  std::unique_lock lock(mutex_);
  const uint64_t applied_before = applied_;
  while (!stopping_ && !requests_.empty()) {
    const Request request = requests_.front();
    requests_.pop_front();
    lock.unlock();
    std::string error = apply(request);
    lock.lock();
    listen_error_ = std::move(error);
    ++applied_;
  }
  if (applied_ != applied_before) {
    applied_changed_.notify_all();
  }
  return !stopping_;
}

std::string FaultProxy::apply(const Request& request) {
  const Fault fault = request.fault;
  // Leaving Blackhole resets: the held connections lost their place in the stream (see the
  // header).
  if (fault == Fault::Reset || fault == Fault::Refuse ||
      (fault_ == Fault::Blackhole && fault != Fault::Blackhole)) {
    reset_connections();
  }
  if (fault == Fault::Refuse && listening_) {
    // Closing the listening socket also resets the connections still in its backlog. The
    // port is bound again at once, without listen(): a SYN to a bound socket that is not
    // listening gets a RST (ECONNREFUSED), and the binding keeps the port from being taken,
    // e.g. as the ephemeral port of some connect(), before we listen on it again.
    listener_.reset();
    listening_ = false;
    listener_ = bind_loopback(port_).fd;  // if this fails, listen_again() retries the bind
  }
  fault_ = fault;
  delay_ = request.delay;
  if (fault != Fault::Refuse && !listening_) {
    std::string error = listen_again();
    if (!error.empty()) {
      std::fprintf(stderr, "%s\n", error.c_str());
    }
    return error;
  }
  return {};
}

std::string FaultProxy::listen_again() {
  if (!listener_.valid()) {
    SocketResult bound = bind_loopback(port_);
    if (!bound.fd.valid()) {
      return bound.error;
    }
    listener_ = std::move(bound.fd);
  }
  if (::listen(listener_.get(), SOMAXCONN) != 0) {
    return errno_message("FaultProxy: listen on 127.0.0.1:" + std::to_string(port_), errno);
  }
  listening_ = true;
  return {};
}

void FaultProxy::reset_connections() {
  for (const std::unique_ptr<Connection>& connection : connections_) {
    connection->reset();
  }
  connections_.clear();
}

void FaultProxy::accept_connections(Clock::time_point now) {
  while (true) {
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ = now + kAcceptBackoff;
      }
      return;  // EAGAIN: the backlog is empty
    }
    ++connections_accepted_;
    if (fault_ == Fault::Reset) {
      reset_close(client);
      continue;
    }
    set_nodelay(client.get());
    auto connection = std::make_unique<Connection>();
    connection->client.fd = std::move(client);
    if (fault_ != Fault::Blackhole) {
      Connection::End& upstream = connection->upstream;
      upstream.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!upstream.fd.valid()) {
        connection->reset();
        continue;
      }
      // RESP commands are small writes; Nagle would hold one back for the previous one's ACK.
      set_nodelay(upstream.fd.get());
      const sockaddr_in target = loopback_address(target_port_);
      if (::connect(upstream.fd.get(), reinterpret_cast<const sockaddr*>(&target),
                    sizeof target) == 0) {
        connection->upstream_connected = true;
      } else if (errno != EINPROGRESS) {
        connection->reset();  // the target is down
        continue;
      }
    }
    connections_.push_back(std::move(connection));
  }
}

void FaultProxy::run() {
  std::vector<pollfd> fds;
  while (apply_requests()) {
    Clock::time_point now = Clock::now();
    const bool blackhole = fault_ == Fault::Blackhole;
    if (!blackhole) {
      for (const std::unique_ptr<Connection>& connection : connections_) {
        connection->flush(now);
      }
    }
    std::erase_if(connections_, [](const auto& connection) { return connection->dead; });

    // fds: the wake eventfd, the listener, then the client and upstream end of each
    // connection in connections_ order. A negative fd is skipped by poll().
    fds.clear();
    fds.push_back(pollfd{wake_.get(), POLLIN, 0});
    const bool accepting = listening_ && now >= accept_paused_until_;
    fds.push_back(pollfd{accepting ? listener_.get() : -1, POLLIN, 0});
    std::optional<Clock::time_point> wake_at;
    if (listening_ && !accepting) {
      wake_at = accept_paused_until_;
    }
    for (const std::unique_ptr<Connection>& connection : connections_) {
      const int client_fd = connection->client.fd.valid() ? connection->client.fd.get() : -1;
      const int upstream_fd =
          connection->upstream.fd.valid() ? connection->upstream.fd.get() : -1;
      if (blackhole) {
        // Nothing is read or written; only a peer's close is watched, so that the held
        // connection goes instead of lingering. A pending connect is left alone.
        fds.push_back(pollfd{client_fd, POLLRDHUP, 0});
        fds.push_back(
            pollfd{upstream_fd, static_cast<short>(connection->upstream_connected ? POLLRDHUP : 0),
                   0});
        continue;
      }
      fds.push_back(pollfd{client_fd, connection->client_events(now), 0});
      fds.push_back(pollfd{upstream_fd, connection->upstream_events(now), 0});
      if (const std::optional<Clock::time_point> due = connection->next_due(now)) {
        wake_at = wake_at ? std::min(*wake_at, *due) : *due;
      }
    }

    const int timeout = wake_at ? poll_timeout_ms(*wake_at - now) : -1;
    if (::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout) < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "FaultProxy: %s\n", errno_message("poll", errno).c_str());
      break;
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t ignored = ::read(wake_.get(), &count, sizeof count);
    }
    now = Clock::now();
    const Clock::time_point due = fault_ == Fault::Delay ? now + delay_ : now;
    // Connections accepted below are appended, so these indexes still match fds.
    for (size_t i = 0; i + 2 < fds.size(); i += 2) {
      Connection& connection = *connections_[i / 2];
      const short client_revents = fds[i + 2].revents;
      const short upstream_revents = fds[i + 3].revents;
      if (blackhole) {
        if ((client_revents | upstream_revents) != 0) {
          connection.reset();
        }
        continue;
      }
      connection.on_events(client_revents, upstream_revents, due);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      accept_connections(now);
    }
  }

  connections_.clear();  // plain close: stop() is the end of the test, not a fault
  listener_.reset();
  listening_ = false;
  {
    std::lock_guard lock(mutex_);
    loop_running_ = false;
  }
  applied_changed_.notify_all();
}

}  // namespace cachecar::test
