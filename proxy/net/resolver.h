#pragma once
// Turning a configured host into a socket address without blocking the loop: IP literals are
// parsed directly; names go through uv_getaddrinfo (libuv's thread pool). resolve_blocking()
// exists for start-up only, before a loop serves anything.

#include <sys/socket.h>
#include <uv.h>

#include <functional>
#include <optional>
#include <string>

#include "net/endpoints.h"

namespace cachecar {

struct SocketAddress {
  sockaddr_storage storage{};
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  std::string to_string() const;
};

// IPv4 or IPv6 literal, or nullopt. An empty host means "every interface" (0.0.0.0).
std::optional<SocketAddress> parse_ip_address(const std::string& host, uint16_t port);

// getaddrinfo on the calling thread. Start-up only.
std::optional<SocketAddress> resolve_blocking(const HostPort& address, std::string& error);

// One asynchronous look-up at a time per owner. Destroying the resolver abandons a look-up in
// flight: its callback is then never called.
class AsyncResolver {
 public:
  using Callback = std::function<void(std::optional<SocketAddress>, std::string error)>;

  explicit AsyncResolver(uv_loop_t* loop) : loop_(loop) {}
  ~AsyncResolver();
  AsyncResolver(const AsyncResolver&) = delete;
  AsyncResolver& operator=(const AsyncResolver&) = delete;

  // Calls `callback` on the loop, possibly synchronously for IP literals.
  void resolve(const HostPort& address, Callback callback);
  bool busy() const { return pending_ != nullptr; }

 private:
  struct Pending;
  static void on_resolved(uv_getaddrinfo_t* request, int status, addrinfo* result);

  uv_loop_t* loop_;
  Pending* pending_ = nullptr;  // owned by libuv until its callback runs
};

}  // namespace cachecar
