#include "net/resolver.h"

#include <netdb.h>

#include <cstring>

namespace cachecar {

struct AsyncResolver::Pending {
  uv_getaddrinfo_t request{};
  AsyncResolver* owner = nullptr;  // null once the owner is gone
  Callback callback;
  uint16_t port = 0;
};

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = {0};
  const auto* sa = get();
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(in6, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(sa);
  uv_ip4_name(in4, host, sizeof(host));
  return std::string(host) + ":" + std::to_string(ntohs(in4->sin_port));
}

std::optional<SocketAddress> parse_ip_address(const std::string& host, uint16_t port) {
  SocketAddress out;
  const std::string literal = host.empty() ? "0.0.0.0" : host;
  if (uv_ip4_addr(literal.c_str(), port, reinterpret_cast<sockaddr_in*>(&out.storage)) == 0) {
    return out;
  }
  if (uv_ip6_addr(literal.c_str(), port, reinterpret_cast<sockaddr_in6*>(&out.storage)) == 0) {
    return out;
  }
  return std::nullopt;
}

namespace {

std::optional<SocketAddress> first_address(const addrinfo* result, uint16_t port) {
  for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
      continue;
    }
    SocketAddress out;
    std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&out.storage)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&out.storage)->sin6_port = htons(port);
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SocketAddress> resolve_blocking(const HostPort& address, std::string& error) {
  if (auto literal = parse_ip_address(address.host, address.port)) {
    return literal;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(address.host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    error = gai_strerror(rc);
    return std::nullopt;
  }
  auto out = first_address(result, address.port);
  freeaddrinfo(result);
  if (!out) {
    error = "no IPv4 or IPv6 address";
  }
  return out;
}

AsyncResolver::~AsyncResolver() {
  if (pending_ != nullptr) {
    pending_->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&pending_->request));
  }
}

void AsyncResolver::resolve(const HostPort& address, Callback callback) {
  if (auto literal = parse_ip_address(address.host, address.port)) {
    callback(literal, {});
    return;
  }
  if (pending_ != nullptr) {
    pending_->owner = nullptr;  // the newer request wins
  }
  auto* pending = new Pending;
  pending->owner = this;
  pending->callback = std::move(callback);
  pending->port = address.port;
  pending->request.data = pending;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const int rc =
      uv_getaddrinfo(loop_, &pending->request, on_resolved, address.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    Callback cb = std::move(pending->callback);
    delete pending;
    cb(std::nullopt, uv_strerror(rc));
    return;
  }
  pending_ = pending;
}

void AsyncResolver::on_resolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
  auto* pending = static_cast<Pending*>(request->data);
  std::optional<SocketAddress> address;
  std::string error;
  if (status == 0) {
    address = first_address(result, pending->port);
    if (!address) {
      error = "no IPv4 or IPv6 address";
    }
  } else {
    error = uv_strerror(status);
  }
  uv_freeaddrinfo(result);
  AsyncResolver* owner = pending->owner;
  Callback callback = std::move(pending->callback);
  if (owner != nullptr && owner->pending_ == pending) {
    owner->pending_ = nullptr;
  }
  delete pending;
  if (owner == nullptr) {
    return;
  }
  callback(std::move(address), std::move(error));
}

}  // namespace cachecar
