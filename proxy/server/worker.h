#pragma once
// One event loop in one thread: its listener, its client connections, its upstream pool.
// Workers share nothing mutable but the process-wide connection counter (an atomic, so that
// limits.max_connections holds for the process, as an operator reads it).
//
// Thread rules: start(), request_drain() and join() are called from the main thread; every
// other method runs on the worker's own loop thread.

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "admin/metrics.h"
#include "net/resolver.h"
#include "router/worker_context.h"
#include "uv/handle.h"

namespace cachecar {

class BackgroundRefreshes;
class BatchedLimiter;
class CacheStore;
class ClientConnection;
class Coalescer;
class NearTracking;
class RedisClient;
class SentinelDirectory;
class SessionTouches;
class UpstreamPool;

struct ProcessState {
  std::atomic<int> open_connections{0};
};

class Worker {
 public:
  // `listen_fd` is a bound socket this worker will listen on and own. `upstream_address` is
  // the start-up resolution of upstream.url (empty when it failed). `on_exit` runs on the
  // worker thread after its loop has ended.
  Worker(int index, std::shared_ptr<const Config> config, int listen_fd,
         std::optional<SocketAddress> upstream_address, ProcessState& process,
         std::function<void()> on_exit);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Thread-safe: stop accepting, finish in-flight requests for up to drain_timeout, then end.
  void request_drain();
  // Thread-safe: new requests use `config` from the next loop iteration; requests in flight
  // finish with the one they started with. Requires: before request_drain().
  void apply_config(std::shared_ptr<const Config> config);
  void join();

  // Thread-safe reads for the admin thread.
  const WorkerMetrics& metrics() const { return *metrics_; }
  // Steady-clock milliseconds of the loop's last heartbeat (every second while it turns).
  uint64_t heartbeat_ms() const { return heartbeat_ms_.load(std::memory_order_relaxed); }

  // --- loop thread only ---
  WorkerContext& context() { return context_; }
  uv_loop_t* loop() { return &loop_; }
  uv_buf_t read_buffer();
  bool draining() const { return draining_; }
  // Registers a new connection; false when limits.max_connections is reached.
  bool admit(ClientConnection* connection);
  void forget(ClientConnection* connection);
  // Calls connection->on_ready() from the loop soon, outside any current call stack.
  void schedule_ready(ClientConnection* connection);
  void unschedule_ready(ClientConnection* connection);

 private:
  static constexpr size_t kReadBufferSize = 64 * 1024;

  void run();
  void on_heartbeat();
  void on_config_signal();
  void begin_drain();
  void finish_if_drained();
  void run_ready_list();

  const int index_;
  int listen_fd_;
  std::optional<SocketAddress> upstream_address_;
  ProcessState& process_;
  std::function<void()> on_exit_;
  std::thread thread_;

  uv_loop_t loop_{};
  WorkerContext context_;
  std::unique_ptr<UpstreamPool> pool_;
  std::shared_ptr<SentinelDirectory> sentinels_;  // with redis+sentinel://; stopped after redis_
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<CacheStore> cache_;
  std::unique_ptr<Coalescer> coalescer_;
  std::unique_ptr<NearTracking> near_;  // with cache.near; stopped before redis_
  std::unique_ptr<BatchedLimiter> limiter_;
  std::unique_ptr<BackgroundRefreshes> refreshes_;  // stopped before redis_ and pool_
  std::unique_ptr<SessionTouches> touches_;         // before redis_: cancels its calls
  UvPtr<uv_tcp_t> listener_;
  UvPtr<uv_async_t> drain_signal_;
  UvPtr<uv_async_t> config_signal_;
  UvPtr<uv_timer_t> heartbeat_timer_;
  std::mutex pending_config_mutex_;
  std::shared_ptr<const Config> pending_config_;  // guarded by pending_config_mutex_
  std::unique_ptr<WorkerMetrics> metrics_ = std::make_unique<WorkerMetrics>();
  std::atomic<uint64_t> heartbeat_ms_{0};
  UvPtr<uv_timer_t> drain_timer_;
  UvPtr<uv_idle_t> ready_idle_;
  UvPtr<uv_prepare_t> access_log_flush_;
  std::vector<ClientConnection*> ready_;
  std::vector<ClientConnection*> ready_batch_;  // the list being run; kept for its capacity
  ClientConnection* connections_ = nullptr;     // intrusive list head
  int connection_count_ = 0;
  std::atomic<bool> drain_requested_{false};  // request_drain() sends at most one signal
  bool draining_ = false;
  bool drain_deadline_passed_ = false;
  bool waiting_for_journal_ = false;  // logged once
  bool finished_ = false;
  std::vector<char> read_buffer_;
};

}  // namespace cachecar
