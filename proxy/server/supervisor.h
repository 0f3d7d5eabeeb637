#pragma once
// The main thread: binds the listeners, starts the workers, serves the admin endpoints, and
// turns signals into actions. SIGTERM/SIGINT: readiness goes to 503 at once, the workers
// drain, the process exits 0 (a second signal exits at once). SIGHUP: the configuration file
// is read again; a valid one reaches every worker, an invalid one is rejected with the same
// message as --check-config and the running configuration stays. Settings bound at start-up
// (listen, admin.listen, workers, upstream.url, redis.url) keep their running values and a
// change to them is logged as needing a restart.

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "cache/purger.h"
#include "config/config.h"
#include "server/worker.h"
#include "uv/handle.h"

namespace cachecar {

class Supervisor {
 public:
  Supervisor(std::string config_path, std::shared_ptr<const Config> config);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Runs until every worker has drained; returns the process exit code.
  int run();

 private:
  enum class Phase { Starting, Ready, Draining };

  void on_stop_signal(int signum);
  void on_reload_signal();
  void on_worker_exit();
  void watch_signal(int signum, uv_signal_cb callback);
  bool healthy() const;
  std::string metrics() const;

  const std::string config_path_;
  std::shared_ptr<const Config> config_;
  ProcessState process_;
  uv_loop_t loop_{};
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<Purger> purger_;  // POST /purge's Redis side; stopped with the admin server
  UvPtr<uv_async_t> exit_signal_;
  std::vector<UvPtr<uv_signal_t>> signals_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> exited_{0};
  std::atomic<Phase> phase_{Phase::Starting};
};

}  // namespace cachecar
