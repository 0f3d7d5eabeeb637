#pragma once

// Blocking-socket building blocks shared by the test support classes: an owning fd, a loopback
// connect bounded by a deadline, a send loop, and a buffered reader.
//
// SocketReader keeps bytes received beyond the current message in its buffer, so a caller can
// read pipelined messages one after another from the same reader. The reader borrows the fd; the
// fd's owner must outlive it. Every read blocks only as long as the fd's SO_RCVTIMEO allows (or
// until the fd is shut down by another thread, which is how servers are stopped).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace cachecar::test {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  // Closes the current fd (if any) and takes ownership of `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

enum class IoStatus {
  Ok,
  Eof,        // orderly close by the peer (or our own shutdown from another thread)
  Timeout,    // SO_RCVTIMEO / SO_SNDTIMEO / deadline expired
  Reset,      // ECONNRESET / EPIPE
  Error,      // any other errno
  Malformed,  // bytes arrived but do not follow the expected syntax
  TooLarge,   // a line or head exceeded the caller's limit
};

std::string_view to_string(IoStatus status);

// "what: strerror(err)" for exception messages.
std::string errno_message(std::string_view what, int err);

struct ConnectResult {
  UniqueFd fd;        // valid on success
  std::string error;  // why it failed otherwise
};

// Connects to 127.0.0.1:port. The connect itself is non-blocking and bounded by `timeout`,
// because a SIGSTOPped server with a full backlog would otherwise hang the test in SYN retries.
// The returned socket is blocking, CLOEXEC and has TCP_NODELAY set.
ConnectResult try_connect_loopback(int port, std::chrono::milliseconds timeout);
// As above but throws std::runtime_error with context on failure.
UniqueFd connect_loopback(int port, std::chrono::milliseconds timeout);

// Sets SO_RCVTIMEO and SO_SNDTIMEO; a zero duration means "block until shut down".
void set_io_timeout(int fd, std::chrono::milliseconds timeout);
void set_nodelay(int fd);

// Sends all of `data` (MSG_NOSIGNAL, so a closed peer is an error, not a SIGPIPE).
IoStatus send_all(int fd, std::string_view data);

// Waits until the process at the other end of the loopback connection `fd` has read every
// byte sent on it: the peer socket (asked of the kernel through sock_diag) has received as many
// bytes as we transmitted, and its receive queue is empty. A test that writes a message in two
// segments calls this in between so that the peer's reads see the cut, without guessing a
// sleep. False at the timeout, or at once if the kernel cannot be asked (the caller then knows
// the cut may have merged).
bool wait_until_peer_read(int fd, std::chrono::milliseconds timeout);

using ByteSink = std::function<void(std::string_view)>;

struct ReadResult {
  IoStatus status = IoStatus::Ok;
  std::string text;
};

class SocketReader {
 public:
  explicit SocketReader(int fd = -1) : fd_(fd) {}

  void set_fd(int fd) { fd_ = fd; }
  // errno of the last failed recv, for messages.
  int last_errno() const { return last_errno_; }

  // Receives once (up to 64 KiB) and appends to the buffer.
  IoStatus fill();
  // Bytes received but not yet consumed.
  std::string_view buffered() const;
  void consume(size_t n);

  // Reads up to and including `delimiter`; `text` excludes it. TooLarge if `max_bytes` pass
  // without a delimiter.
  ReadResult read_until(std::string_view delimiter, size_t max_bytes);
  // Passes exactly `n` bytes to `sink` in pieces, as they arrive.
  IoStatus read_exact(size_t n, const ByteSink& sink);
  // Passes everything to `sink` until the peer closes. Eof is the success result here.
  IoStatus read_to_eof(const ByteSink& sink);

 private:
  int fd_;
  int last_errno_ = 0;
  std::string buffer_;
  size_t start_ = 0;  // bytes of buffer_ before start_ are consumed
};

}  // namespace cachecar::test
