#pragma once

// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it for a bind to port 0,
// then the socket is closed. Another process can take it before the caller binds, so callers
// that start servers on it (RedisServer) retry with a new port when the bind fails.

namespace cachecar::test {

// Throws std::runtime_error if no socket can be bound.
int free_tcp_port();

}  // namespace cachecar::test
