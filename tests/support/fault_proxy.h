#pragma once

// FaultProxy is the network between cachecar and redis-server in integration tests: a TCP
// proxy on 127.0.0.1 that forwards each connection to 127.0.0.1:target_port byte for byte,
// until a test tells it to stall (Blackhole), slow down (Delay), reset (Reset) or refuse
// (Refuse) the traffic, and then to mend (None). It knows nothing of RESP.
//
// Threads: one loop thread owns every socket (the listener and both ends of each connection)
// and multiplexes them with poll(). Public methods only queue a request and wake the loop
// through an eventfd, so no other thread ever closes an fd the loop is polling, and a fault
// meets all connections at one point in their byte streams. All public methods are
// thread-safe; set_fault() may be called from any thread, e.g. a TestUpstream handler.
//
// A fault holds for the open connections and for every new one until the next set_fault().
// set_fault() returns once the loop has applied it, so the test can rely on it at once: after
// set_fault(Refuse) returns, connect() is refused; after set_fault(None) returns, it succeeds.
//
// The port is chosen once and never changes, not even across Refuse, so cachecar's config
// (redis_url()) stays valid for the whole test.
//
// stop() (also run by the destructor) closes every socket and joins the loop thread: no
// thread or fd outlives it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/socket_util.h"

namespace cachecar::test {

class FaultProxy {
 public:
  enum class Fault {
    // Bytes flow both ways unchanged.
    None,
    // Connections stay open and nothing is forwarded either way: the proxy stops reading, so
    // the peers' writes pile up in the kernel as they would behind a dead link. New connections
    // are accepted and held the same way (they are never connected to the target). Leaving
    // Blackhole resets every connection it held, because bytes dropped mid-stream would
    // otherwise corrupt the RESP stream when it resumed; a peer that closes while held is
    // reset at once.
    Blackhole,
    // Every chunk is forwarded `delay` after the proxy read it, in order, per direction; a FIN
    // is delayed the same way. Chunks queued under a delay keep their due time when the fault
    // changes, and later chunks queue behind them, so going back to None delivers the queue in
    // order and only then runs without delay. Connecting to the target is not delayed.
    Delay,
    // Every open connection is reset: SO_LINGER 0 and close on both ends, so the client gets
    // a RST and the target sees its connection reset. New connections are accepted and reset
    // at once.
    Reset,
    // The listening socket is closed (a connect() gets ECONNREFUSED) and open connections are
    // reset as under Reset. The port stays bound, not listening, so nothing else can take it;
    // leaving Refuse listens on it again.
    Refuse,
  };

  // Listens on 127.0.0.1:<free port> and forwards each connection to 127.0.0.1:target_port,
  // connecting when the client connects. If that connect fails (the target is down), the
  // client's connection is reset. Throws std::runtime_error if the proxy cannot listen.
  explicit FaultProxy(int target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string redis_url() const;  // "redis://127.0.0.1:PORT"

  // Applies `fault` to the open connections and to new ones, and returns once it is in effect.
  // `delay` is used only by Fault::Delay (negative counts as zero). Throws std::runtime_error
  // if the proxy cannot listen again when leaving Refuse. After stop() it does nothing.
  void set_fault(Fault fault, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // Client connections accepted since construction, including the ones reset at once.
  size_t connections_accepted() const { return connections_accepted_.load(); }

  // Closes the listener and every connection and joins the loop thread. Idempotent.
  void stop();

 private:
  struct Connection;
  struct Request {
    Fault fault = Fault::None;
    std::chrono::milliseconds delay{0};
  };

  void run();
  // Applies the queued requests in order; false once stop() was called.
  bool apply_requests();
  // Returns why the proxy could not listen again, or "" on success.
  std::string apply(const Request& request);
  std::string listen_again();
  void accept_connections(std::chrono::steady_clock::time_point now);
  void reset_connections();
  void wake();

  // Constant after construction.
  const int target_port_;
  int port_ = 0;
  UniqueFd wake_;  // eventfd: set_fault() and stop() interrupt the loop's poll()

  std::mutex stop_mutex_;    // serialises stop(), so two callers do not join at once
  std::thread loop_thread_;  // guarded by stop_mutex_ after construction

  // State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable applied_changed_;  // applied_ grew or loop_running_ went false
  std::deque<Request> requests_;             // queued by set_fault(), applied in order
  uint64_t requested_ = 0;                   // requests ever queued (each caller's ticket)
  uint64_t applied_ = 0;                     // requests applied, in queue order
  bool stopping_ = false;
  bool loop_running_ = false;
  std::string listen_error_;  // why the proxy is not listening when it should, or ""

  std::atomic<size_t> connections_accepted_{0};  // written by the loop thread

  // State below is touched only by the loop thread (and the constructor before it starts).
  Fault fault_ = Fault::None;
  std::chrono::milliseconds delay_{0};
  UniqueFd listener_;       // listening; under Refuse bound only, holding the port
  bool listening_ = false;  // listen() was called on listener_
  std::chrono::steady_clock::time_point accept_paused_until_{};  // after EMFILE
  std::vector<std::unique_ptr<Connection>> connections_;
};

}  // namespace cachecar::test
