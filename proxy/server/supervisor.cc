#include "server/supervisor.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "admin/metrics.h"
#include "admin/purge_endpoint.h"
#include "config/config_file.h"
#include "log/logging.h"
#include "net/listener.h"
#include "net/resolver.h"

namespace cachecar {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
// A worker whose heartbeat (every second) is older than this is stuck: /healthz says so.
constexpr uint64_t kStuckAfterMs = 5'000;

uint64_t steady_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Settings a running process cannot change: the sockets are bound, the threads started, and
// each worker's upstream pool and Redis connection were made for one address. A change to one
// is reported and its running value copied into `next`, whole: a half-applied upstream.url
// would send the new path prefix to the old host. Since the running configuration keeps the
// old values, each later reload reports the change again until a restart.
void keep_restart_only_settings(const Config& running, Config& next) {
  auto report = [](std::string_view key, const std::string& from, const std::string& to) {
    if (from != to) {
      spdlog::warn("reload: {} changed from {} to {}; it takes effect after a restart", key, from,
                   to);
    }
  };
  report("listen", running.listen.to_string(), next.listen.to_string());
  next.listen = running.listen;
  report("admin.listen", running.admin.listen.to_string(), next.admin.listen.to_string());
  next.admin.listen = running.admin.listen;
  report("workers", std::to_string(running.workers), std::to_string(next.workers));
  next.workers = running.workers;
  report("upstream.url", running.upstream.url.to_string(), next.upstream.url.to_string());
  next.upstream.url = running.upstream.url;
  const std::string redis_from = running.redis.url.to_redacted_string();
  const std::string redis_to = next.redis.url.to_redacted_string();
  report("redis.url", redis_from, redis_to);
  if (redis_from == redis_to && running.redis.url.password != next.redis.url.password) {
    spdlog::warn("reload: the redis.url password changed; it takes effect after a restart");
  }
  next.redis.url = running.redis.url;
  // The TLS context was loaded from these files at start; each connection's session uses it.
  auto describe_tls = [](const TlsSettings& tls) {
    return "{ca_file: " + tls.ca_file + ", cert_file: " + tls.cert_file +
           ", key_file: " + tls.key_file + ", server_name: " + tls.server_name +
           ", insecure_skip_verify: " + (tls.insecure_skip_verify ? "true" : "false") + "}";
  };
  report("redis.tls", describe_tls(running.redis.tls), describe_tls(next.redis.tls));
  next.redis.tls = running.redis.tls;
  next.redis.tls_context = running.redis.tls_context;
}

}  // namespace

Supervisor::Supervisor(std::string config_path, std::shared_ptr<const Config> config)
    : config_path_(std::move(config_path)), config_(std::move(config)) {}

Supervisor::~Supervisor() = default;

void Supervisor::watch_signal(int signum, uv_signal_cb callback) {
  UvPtr<uv_signal_t> handle(new uv_signal_t);
  uv_check("uv_signal_init", uv_signal_init(&loop_, handle.get()));
  handle->data = this;
  uv_check("uv_signal_start", uv_signal_start(handle.get(), callback, signum));
  signals_.push_back(std::move(handle));
}

int Supervisor::run() {
  std::string error;
  auto listen_address = resolve_blocking(config_->listen, error);
  if (!listen_address) {
    spdlog::critical("listen {}: {}", config_->listen.to_string(), error);
    return kExitFailure;
  }
  const int workers = config_->workers;
  auto sockets = bind_listen_sockets(*listen_address, workers, workers > 1, error);
  if (!sockets) {
    spdlog::critical("cannot listen: {}", error);
    return kExitFailure;
  }
  auto upstream_address = resolve_blocking(config_->upstream.url.address, error);
  if (!upstream_address) {
    // Not fatal: the upstream may come up after us; the pool keeps trying in the background.
    spdlog::warn("upstream {}: cannot resolve yet: {}", config_->upstream.url.address.host, error);
  }

  uv_check("uv_loop_init", uv_loop_init(&loop_));
  admin_ = std::make_unique<AdminServer>(
      &loop_, AdminServer::Hooks{[this] { return phase_.load() == Phase::Ready; },
                                 [this] { return healthy(); }, [this] { return metrics(); },
                                 [this](const RequestHead& head, std::string_view body,
                                        const std::string& peer, AdminServer::Reply reply) {
                                   handle_purge(*purger_, *config_, head, body, peer,
                                                std::move(reply));
                                 }});
  admin_->set_idle_timeout(config_->limits.idle_timeout);
  auto admin_address = admin_->listen(config_->admin.listen, error);
  if (!admin_address) {
    spdlog::critical("cannot listen for admin endpoints on {}: {}",
                     config_->admin.listen.to_string(), error);
    admin_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return kExitFailure;
  }

  purger_ = std::make_unique<Purger>(&loop_, config_);

  exit_signal_.reset(new uv_async_t);
  uv_check("uv_async_init", uv_async_init(&loop_, exit_signal_.get(), [](uv_async_t* async) {
             owner_of<Supervisor>(async)->on_worker_exit();
           }));
  exit_signal_->data = this;
  for (int signum : {SIGTERM, SIGINT}) {
    watch_signal(signum,
                 [](uv_signal_t* h, int sig) { owner_of<Supervisor>(h)->on_stop_signal(sig); });
  }
  watch_signal(SIGHUP, [](uv_signal_t* h, int) { owner_of<Supervisor>(h)->on_reload_signal(); });

  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, config_, sockets->fds[static_cast<size_t>(i)],
                                                upstream_address, process_, [this] {
                                                  exited_.fetch_add(1);
                                                  uv_async_send(exit_signal_.get());
                                                }));
  }
  for (auto& worker : workers_) {
    worker->start();
  }
  phase_ = Phase::Ready;
  spdlog::info("admin listening on {}", admin_address->to_string());
  spdlog::info("cachecar {} listening on {} with {} worker(s), upstream {}", CACHECAR_VERSION,
               sockets->bound.to_string(), workers, config_->upstream.url.to_string());
  if (config_->redis.url.tls && config_->redis.tls.insecure_skip_verify) {
    spdlog::warn(
        "redis.tls.insecure_skip_verify: the Redis server's certificate and name are not "
        "checked; anyone on the path can read and change what cachecar stores");
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_) {
    worker->join();
  }
  workers_.clear();
  uv_check("uv_loop_close", uv_loop_close(&loop_));
  spdlog::info("cachecar stopped");
  spdlog::default_logger()->flush();
  return kExitOk;
}

void Supervisor::on_stop_signal(int signum) {
  if (phase_.load() == Phase::Draining) {
    spdlog::warn("second {}: exiting without waiting for in-flight requests", strsignal(signum));
    spdlog::default_logger()->flush();
    std::_Exit(kExitFailure);
  }
  // Not ready from this moment: load balancers stop sending while in-flight requests finish.
  phase_ = Phase::Draining;
  spdlog::info("{}: draining (up to {})", strsignal(signum),
               format_duration(config_->drain_timeout));
  for (auto& worker : workers_) {
    worker->request_drain();
  }
}

void Supervisor::on_reload_signal() {
  if (phase_.load() != Phase::Ready) {
    return;
  }
  std::string error;
  auto next = load_config_file(config_path_, error);
  if (!next) {
    spdlog::error("reload rejected, the running configuration stays: {}", error);
    return;
  }
  auto applied = std::make_shared<Config>(*next);
  keep_restart_only_settings(*config_, *applied);
  setup_logging(applied->log);
  admin_->set_idle_timeout(applied->limits.idle_timeout);
  for (auto& worker : workers_) {
    worker->apply_config(applied);
  }
  purger_->set_config(applied);
  config_ = std::move(applied);
  spdlog::info("configuration reloaded from {}", config_path_);
}

void Supervisor::on_worker_exit() {
  // uv_async_send coalesces calls, so count the workers whose loops ended instead.
  if (exited_.load() == static_cast<int>(workers_.size())) {
    // Join before closing the async handle: the last worker may still be inside its
    // uv_async_send() call on it.
    for (auto& worker : workers_) {
      worker->join();
    }
    admin_->close();
    purger_->stop();
    exit_signal_.reset();
    signals_.clear();
  }
}

bool Supervisor::healthy() const {
  const uint64_t now = steady_now_ms();
  for (const auto& worker : workers_) {
    const uint64_t last = worker->heartbeat_ms();
    if (now > last && now - last > kStuckAfterMs) {
      return false;
    }
  }
  return true;
}

std::string Supervisor::metrics() const {
  std::vector<const WorkerMetrics*> sets;
  for (const auto& worker : workers_) {
    sets.push_back(&worker->metrics());
  }
  return render_metrics(sets, CACHECAR_VERSION) + render_purge_metrics(purger_->stats());
}

}  // namespace cachecar
