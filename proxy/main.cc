// cachecar: command line, configuration, logging, workers and signals. Kept thin: everything
// that decides lives in the modules.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "log/logging.h"
#include "server/listener.h"
#include "server/worker.h"
#include "uv/handle.h"
#include "uv/resolver.h"

#ifndef CACHECAR_VERSION
#define CACHECAR_VERSION "0.0.0-dev"
#endif

namespace cachecar {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage: cachecar [--config FILE]
       cachecar --check-config FILE
       cachecar --version | --help

A reverse caching proxy in front of an HTTP API, with its cache and rate limits in Redis.

  --config FILE        run with this configuration (default: config.yaml)
  --check-config FILE  validate FILE with the environment applied, print the effective
                       configuration and exit: 0 valid, 2 invalid
  --version            print the version and exit
  --help               print this text and exit

Environment overrides: REDIS_URL, UPSTREAM_URL, LISTEN, LOG_LEVEL.
Signals: SIGTERM or SIGINT drain in-flight requests (up to drain_timeout) and exit 0;
a second one exits at once.
)";

struct Options {
  std::string config_path = "config.yaml";
  bool check_only = false;
};

std::optional<std::string> read_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> getenv_lookup(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) {
    return std::nullopt;
  }
  return std::string(value);
}

// Loads and validates; on failure prints the error as "file:line: key: reason" and returns
// nullptr.
std::shared_ptr<const Config> load_config(const std::string& path) {
  std::string error;
  auto text = read_file(path, error);
  if (!text) {
    std::fprintf(stderr, "cachecar: %s\n", error.c_str());
    return nullptr;
  }
  auto parsed = parse_config(*text, getenv_lookup);
  if (auto* failure = std::get_if<ConfigError>(&parsed)) {
    std::fprintf(stderr, "cachecar: invalid configuration: %s\n", failure->describe(path).c_str());
    return nullptr;
  }
  return std::make_shared<const Config>(std::move(std::get<Config>(parsed)));
}

// The main thread's loop: signals in, drain requests out, and an exit once every worker
// has finished.
class Supervisor {
 public:
  explicit Supervisor(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

  int run() {
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
      spdlog::warn("upstream {}: cannot resolve yet: {}", config_->upstream.url.address.host,
                   error);
    }

    uv_check("uv_loop_init", uv_loop_init(&loop_));
    exit_signal_.reset(new uv_async_t);
    uv_check("uv_async_init", uv_async_init(&loop_, exit_signal_.get(), [](uv_async_t* async) {
               owner_of<Supervisor>(async)->on_worker_exit();
             }));
    exit_signal_->data = this;
    for (int signum : {SIGTERM, SIGINT}) {
      UvPtr<uv_signal_t> handle(new uv_signal_t);
      uv_check("uv_signal_init", uv_signal_init(&loop_, handle.get()));
      handle->data = this;
      uv_check("uv_signal_start",
               uv_signal_start(
                   handle.get(),
                   [](uv_signal_t* h, int sig) { owner_of<Supervisor>(h)->on_stop_signal(sig); },
                   signum));
      signals_.push_back(std::move(handle));
    }

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
    spdlog::info("cachecar {} listening on {} with {} worker(s), upstream {}", CACHECAR_VERSION,
                 sockets->bound.to_string(), workers, config_->upstream.url.to_string());

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

 private:
  void on_stop_signal(int signum) {
    if (stopping_) {
      spdlog::warn("second {}: exiting without waiting for in-flight requests", strsignal(signum));
      spdlog::default_logger()->flush();
      std::_Exit(kExitFailure);
    }
    stopping_ = true;
    spdlog::info("{}: draining (up to {})", strsignal(signum),
                 format_duration(config_->drain_timeout));
    for (auto& worker : workers_) {
      worker->request_drain();
    }
  }

  void on_worker_exit() {
    // uv_async_send coalesces calls, so count the workers whose loops ended instead.
    if (exited_.load() == static_cast<int>(workers_.size())) {
      // Join before closing the async handle: the last worker may still be inside its
      // uv_async_send() call on it.
      for (auto& worker : workers_) {
        worker->join();
      }
      exit_signal_.reset();
      signals_.clear();
    }
  }

  std::shared_ptr<const Config> config_;
  ProcessState process_;
  uv_loop_t loop_{};
  UvPtr<uv_async_t> exit_signal_;
  std::vector<UvPtr<uv_signal_t>> signals_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> exited_{0};
  bool stopping_ = false;
};

int run_main(int argc, char** argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    if (arg == "--version") {
      std::printf("cachecar %s\n", CACHECAR_VERSION);
      return kExitOk;
    }
    if (arg == "--config" || arg == "--check-config") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "cachecar: %s needs a file\n%s", arg.c_str(), kUsage);
        return kExitUsage;
      }
      options.config_path = args[++i];
      options.check_only = options.check_only || arg == "--check-config";
      continue;
    }
    std::fprintf(stderr, "cachecar: unknown argument '%s'\n%s", arg.c_str(), kUsage);
    return kExitUsage;
  }

  auto config = load_config(options.config_path);
  if (!config) {
    return kExitUsage;
  }
  if (options.check_only) {
    std::printf("# %s: valid\n%s", options.config_path.c_str(), render_config(*config).c_str());
    return kExitOk;
  }

  // A write to a socket the peer closed must be an error code, not a process-killing signal.
  signal(SIGPIPE, SIG_IGN);
  setup_logging(config->log);
  Supervisor supervisor(config);
  return supervisor.run();
}

}  // namespace
}  // namespace cachecar

int main(int argc, char** argv) { return cachecar::run_main(argc, argv); }
