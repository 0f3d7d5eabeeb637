#pragma once
// What one request's Exchange may ask of the client connection it answers. Implemented by
// ClientConnection; kept as an interface so the exchange depends on the contract, not on the
// socket code.
//
// None of these calls deletes the exchange or the connection synchronously, so an exchange
// may call them from inside any of its own callbacks.

#include <string>
#include <string_view>

#include "net/ip.h"

namespace cachecar {

class ClientSession {
 public:
  // Queues response bytes. Ignored once the connection is closing.
  virtual void send(std::string bytes) = 0;
  // The same for bytes the caller keeps: what the socket takes at once is not copied (a hit's
  // response, written into a buffer the worker reuses).
  virtual void send_copy(std::string_view bytes) = 0;
  // True when queued response bytes exceed the high watermark: stop reading the upstream
  // until on_client_drained().
  virtual bool send_congested() const = 0;
  // Request-body backpressure: stop/start reading the client's socket.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  // The response is complete. With `keep_alive` false the connection closes once the bytes
  // are flushed; otherwise the next pipelined request is served.
  virtual void finish_response(bool keep_alive) = 0;
  // The response cannot be completed (e.g. the upstream reset mid-body): close now, so the
  // client sees a broken response rather than a complete-looking truncated one.
  virtual void abort_response() = 0;
  // False while draining: responses then carry "Connection: close".
  virtual bool may_keep_alive() const = 0;
  // The socket peer's address, without port, as text and as a value.
  virtual std::string_view peer_address() const = 0;
  virtual const IpAddress& peer_ip() const = 0;

 protected:
  ~ClientSession() = default;
};

}  // namespace cachecar
