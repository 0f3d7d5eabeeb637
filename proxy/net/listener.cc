#include "net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cachecar {
namespace {

socklen_t address_length(const sockaddr* address) {
  return address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

int bind_one(const SocketAddress& address, bool reuse_port, std::string& error) {
  const int fd = socket(address.get()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
    error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (bind(fd, address.get(), address_length(address.get())) != 0) {
    error = "bind " + address.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::optional<ListenSockets> bind_listen_sockets(const SocketAddress& address, int count,
                                                 bool reuse_port, std::string& error) {
  ListenSockets out;
  out.bound = address;
  for (int i = 0; i < count; ++i) {
    const int fd = bind_one(out.bound, reuse_port, error);
    if (fd < 0) {
      for (int open_fd : out.fds) {
        ::close(open_fd);
      }
      return std::nullopt;
    }
    if (i == 0) {
      // Port 0 means "any free port": every later socket must join the one the first got.
      socklen_t length = sizeof(out.bound.storage);
      getsockname(fd, reinterpret_cast<sockaddr*>(&out.bound.storage), &length);
    }
    out.fds.push_back(fd);
  }
  return out;
}

std::string peer_address_text(const uv_tcp_t* socket) {
  sockaddr_storage storage{};
  int length = sizeof(storage);
  if (uv_tcp_getpeername(socket, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return "unknown";
  }
  char host[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&storage), host, sizeof(host));
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&storage), host, sizeof(host));
  }
  return host;
}

}  // namespace cachecar
