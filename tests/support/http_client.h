#pragma once

// A blocking HTTP/1.1 client for driving cachecar in tests, including with malformed or
// pipelined bytes.
//
// HttpConnection owns one TCP connection to 127.0.0.1 and a receive buffer that survives
// between responses, so pipelined responses are read one by one. Every read and write is bounded
// by SO_RCVTIMEO / SO_SNDTIMEO (10 s unless set otherwise). Responses are parsed, not trusted:
// framing errors show up as `complete == false` or an exception, never as a silent success.
//
// Not thread-safe: one connection belongs to one test thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/checksum.h"
#include "support/http_common.h"
#include "support/socket_util.h"

namespace cachecar::test {

struct HttpResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  HeaderList headers;
  HeaderList trailers;   // chunked responses only
  std::string body;      // decoded; empty when the connection does not store bodies
  size_t body_size = 0;  // decoded bytes, stored or not
  uint64_t body_checksum = kFnv1aOffsetBasis;  // fnv1a over the decoded body
  bool chunked = false;
  // False if the connection ended (EOF, reset, timeout) or broke the framing before the
  // body was complete: truncated Content-Length body, missing last chunk, bad chunk size.
  bool complete = false;
  // Statuses of the 1xx responses that request() skipped before this one.
  std::vector<int> interim_statuses;

  // First field called `name` (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
  size_t header_count(std::string_view name) const;
  std::vector<std::string> header_values(std::string_view name) const;
  bool is_interim() const { return status >= 100 && status < 200; }
};

class HttpConnection {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error if that fails within `timeout`.
  explicit HttpConnection(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // nullopt instead of an exception (to assert that nothing listens).
  static std::optional<HttpConnection> try_connect(
      int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&& other) noexcept;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection() = default;

  int port() const { return port_; }
  int fd() const { return fd_.get(); }
  void set_timeout(std::chrono::milliseconds timeout);
  // When false, bodies are counted and checksummed but not kept (huge downloads).
  void set_store_body(bool store) { store_body_ = store; }

  // Sends bytes as they are. Throws std::runtime_error if they cannot all be sent.
  void send_raw(std::string_view bytes);
  // The same, returning false instead (for peers that are expected to have closed).
  bool try_send_raw(std::string_view bytes);
  // Half-close: the peer sees EOF on its read side; we can still read.
  void shutdown_write();
  void close();

  // Reads one response. Returns 1xx interim responses as responses of their own; call again
  // for the final one. `head_request` says the request was HEAD, so the response has no body
  // whatever its headers say. nullopt if the connection ended, reset or timed out before a
  // complete head arrived (last_error() says which). Throws std::runtime_error if the head is
  // not valid HTTP.
  std::optional<HttpResponse> read_response(bool head_request = false);

  // Sends "METHOD target HTTP/1.1", "Host: test" (unless `headers` has Host), `headers`, and
  // Content-Length when `body` is non-empty (unless `headers` frame it), then reads the
  // response, skipping 1xx interim responses (except 101). Throws std::runtime_error if no
  // response arrives.
  HttpResponse request(std::string_view method, std::string_view target,
                       const HeaderList& headers = {}, std::string_view body = {});

  // True if the peer has closed (EOF or reset) within `within`. Bytes that arrive meanwhile
  // are kept for read_response().
  bool closed_by_peer(std::chrono::milliseconds within = std::chrono::milliseconds(200));

  // Why the last read_response() stopped early; empty after a complete one.
  const std::string& last_error() const { return last_error_; }
  // Received bytes not yet consumed by read_response().
  std::string_view buffered() const { return reader_.buffered(); }

 private:
  HttpConnection() = default;

  int port_ = 0;
  UniqueFd fd_;
  SocketReader reader_;  // borrows fd_
  bool store_body_ = true;
  std::string last_error_;
};

// Builds a request as HttpConnection::request() does (Host, Content-Length), without sending.
std::string build_request(std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body);

// One request on a fresh connection with "Connection: close".
HttpResponse http_request(int port, std::string_view method, std::string_view target,
                          const HeaderList& headers = {}, std::string_view body = {});

}  // namespace cachecar::test
