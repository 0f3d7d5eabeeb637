#pragma once
// The admin listener on its own port: /healthz, /readyz and /metrics. It runs on the main
// thread's loop, apart from the workers, so it answers while they are busy or draining, and it
// is never rate limited or cached.
//
//   /healthz  200 while every worker's loop is turning (its heartbeat is recent), else 503
//   /readyz   200 once start-up is complete; 503 before, and while draining after SIGTERM.
//             Redis being down does not make cachecar unready: it degrades to the upstream.
//   /metrics  the Prometheus text exposition
//   /purge    POST: purge keys, a prefix or tags (issue 18; admin/purge_endpoint.h)
//
// A connection is closed after the idle timeout passes with nothing received, so a scraper
// that keeps its connection alive keeps it for as long as it scrapes.
//
// Ownership: the Supervisor owns the server; connections own themselves and are closed by
// close(), which must be called before the loop ends.

#include <uv.h>

#include <functional>
#include <optional>
#include <string>

#include "config/duration.h"
#include "http/message.h"
#include "net/endpoints.h"
#include "net/resolver.h"
#include "uv/handle.h"

namespace cachecar {

class AdminConnection;

class AdminServer {
 public:
  // An answer the hook gives when it is ready: status, JSON body, and extra header lines
  // ("Name: value\r\n"). Called at most once, on the admin loop.
  using Reply = std::function<void(int status, std::string body, std::string extra_headers)>;

  struct Hooks {
    std::function<bool()> ready;
    std::function<bool()> healthy;
    std::function<std::string()> metrics;
    // POST /purge: the request, its body and the peer's address. The connection reads no
    // further request until `reply` runs (or it closes; the purge still runs).
    std::function<void(const RequestHead& head, std::string_view body, const std::string& peer,
                       Reply reply)>
        purge;
  };

  AdminServer(uv_loop_t* loop, Hooks hooks);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens; the address actually bound, or nullopt with `error` set.
  std::optional<SocketAddress> listen(const HostPort& address, std::string& error);
  // Stops listening and closes every connection.
  void close();
  // From the next byte each connection receives (limits.idle_timeout, reloadable).
  void set_idle_timeout(Duration timeout) { idle_timeout_ = timeout; }

  // --- for AdminConnection ---
  const Hooks& hooks() const { return hooks_; }
  uv_loop_t* loop() const { return loop_; }
  Duration idle_timeout() const { return idle_timeout_; }
  void adopt(AdminConnection* connection);
  void forget(AdminConnection* connection);

 private:
  uv_loop_t* loop_;
  Hooks hooks_;
  Duration idle_timeout_{60'000};
  UvPtr<uv_tcp_t> listener_;
  AdminConnection* connections_ = nullptr;  // intrusive list
};

}  // namespace cachecar
