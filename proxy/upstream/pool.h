#pragma once
// The keep-alive connection pool to the product API, one per worker (no locks). Idle
// connections are reused last-in first-out, so the warmest connection serves next and the
// coldest ones reach their idle timeout and close.
//
// max_idle bounds the idle connections kept once load falls, not the ones a burst leaves
// behind: closing every connection past max_idle the moment its response completes (nginx's
// `keepalive N`) means that under more concurrent requests than max_idle, a batch of
// responses finishing in one loop iteration closes connections the next batch of requests
// must open again. At 256 concurrent misses with max_idle 64 that was a new upstream
// connection for every second request, and twice the CPU per request of cachecar and of the
// upstream. Connections past max_idle close once idle for kSurplusLinger (HAProxy's
// pool-purge-delay): a burst's connections serve the next burst, and an ended one's go soon.
//
// Lifetime: the pool must outlive every UpstreamConnection it created; the worker destroys it
// only after its loop has closed every handle.

#include <uv.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "config/config.h"
#include "net/resolver.h"
#include "uv/handle.h"

namespace cachecar {

class UpstreamConnection;

struct UpstreamSettings {
  Duration connect_timeout{2'000};
  Duration timeout{30'000};
  // Idle pooled connections are closed after this, before a typical upstream closes them
  // itself (node's default keepAliveTimeout is 5s), which avoids most reuse races.
  Duration idle_timeout{4'000};
  int max_idle = 64;
};

struct UpstreamPoolStats {
  uint64_t connections_opened = 0;
  uint64_t connections_reused = 0;
};

class UpstreamPool {
 public:
  // `address` is the start-up resolution of the upstream host (may be empty if it failed);
  // names are re-resolved in the background every kRefreshInterval.
  UpstreamPool(uv_loop_t* loop, const UpstreamUrl& url, const UpstreamSettings& settings,
               std::optional<SocketAddress> address);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An idle connection, or a new one that is connecting (`fresh` forces a new one, for the
  // retry after a pooled connection failed). nullptr when no address is known or no socket
  // could be made.
  UpstreamConnection* acquire(bool fresh);

  // Closes idle connections and stops background work; used when the worker drains.
  void shutdown();

  void set_settings(const UpstreamSettings& settings) { settings_ = settings; }
  const UpstreamSettings& settings() const { return settings_; }
  uv_loop_t* loop() const { return loop_; }
  // "host:port" of upstream.url, for log lines.
  const std::string& name() const { return name_; }
  size_t idle_count() const { return idle_.size(); }
  size_t open_count() const { return open_; }
  const UpstreamPoolStats& stats() const { return stats_; }

  // --- for UpstreamConnection only ---
  void on_opened() {
    ++open_;
    ++stats_.connections_opened;
  }
  void on_idle(UpstreamConnection* connection);
  void on_not_idle(UpstreamConnection* connection);
  void on_closed(UpstreamConnection* connection);
  uv_buf_t read_buffer();

 private:
  static constexpr Duration kRefreshInterval{30'000};
  static constexpr size_t kReadBufferSize = 64 * 1024;
  static constexpr Duration kSurplusLinger{1'000};

  void refresh_address();
  // Closes the coldest idle connections past max_idle that have been idle for kSurplusLinger,
  // and re-arms itself while any surplus remains.
  void trim_surplus();
  void arm_trim(uint64_t delay_ms);

  uv_loop_t* loop_;
  UpstreamUrl url_;
  std::string name_;
  UpstreamSettings settings_;
  std::optional<SocketAddress> address_;
  AsyncResolver resolver_;
  UvPtr<uv_timer_t> refresh_timer_;
  UvPtr<uv_timer_t> trim_timer_;
  bool trim_armed_ = false;
  std::vector<UpstreamConnection*> idle_;  // most recently used last
  size_t open_ = 0;
  bool shut_down_ = false;
  UpstreamPoolStats stats_;
  std::vector<char> read_buffer_;
};

}  // namespace cachecar
