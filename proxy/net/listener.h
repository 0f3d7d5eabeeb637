#pragma once
// Listening sockets, made before any worker starts so that a port in use is reported at once
// and the process exits instead of running half-bound.
//
// With several workers each gets its own socket on the same port (SO_REUSEPORT): the kernel
// spreads connections across them and the workers share no accept queue and no lock. libuv
// 1.44 has no flag for it, so the option is set on the fd before uv_tcp_open.

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "net/resolver.h"

namespace cachecar {

struct ListenSockets {
  std::vector<int> fds;  // one per worker, bound, not yet listening
  SocketAddress bound;   // the address actually bound (port 0 resolved)
};

// Binds `count` sockets to `address`. `reuse_port` must be true when count > 1. On failure
// every socket made so far is closed and `error` says why.
std::optional<ListenSockets> bind_listen_sockets(const SocketAddress& address, int count,
                                                 bool reuse_port, std::string& error);

// The address of an accepted connection's peer, as text ("203.0.113.7", "2001:db8::1"), or
// "unknown".
std::string peer_address_text(const uv_tcp_t* socket);

}  // namespace cachecar
