#pragma once
// Integration-test harness: the real cachecar binary with a generated configuration, a real
// redis-server and a scriptable upstream, all on free loopback ports (cachecar binds port 0
// and reports the port it got in its start-up line, so no port is guessed).

#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/http_client.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/socket_util.h"
#include "support/temp_dir.h"
#include "support/test_upstream.h"

namespace cachecar::test {

using namespace std::chrono_literals;

// Path of the cachecar binary under test (a compile definition from CMake).
std::string cachecar_binary();

// Runs `cachecar args...` to completion; returns {exit code, output}.
std::pair<int, std::string> run_cachecar(const std::vector<std::string>& args,
                                         std::vector<std::pair<std::string, std::string>> env = {});

class Cachecar {
 public:
  // `yaml` is appended to a base configuration that listens on 127.0.0.1:0 and sends access
  // logs to the captured output; it normally sets upstream.url and redis.url. Unless `yaml`
  // has a top-level rate_limit block, rate limiting is turned off.
  explicit Cachecar(const std::string& yaml,
                    std::vector<std::pair<std::string, std::string>> env = {});
  // Stops cachecar with SIGTERM, as an orchestrator would, so that the sanitizers' exit-time
  // checks (LeakSanitizer) run; a sanitizer report anywhere in its output fails the test.
  ~Cachecar();
  Cachecar(const Cachecar&) = delete;
  Cachecar& operator=(const Cachecar&) = delete;

  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  ChildProcess& process() { return *process_; }
  // Replaces the configuration file (same base as the constructor's) for a SIGHUP reload.
  void rewrite_config(const std::string& yaml);
  std::string output() const { return process_->output(); }
  const std::string& config_path() const { return config_path_; }
  // Resident set size and its peak, from /proc (kB).
  long rss_kb() const;
  long peak_rss_kb() const;
  // SIGTERM and wait for the exit code.
  std::optional<int> stop(std::chrono::milliseconds timeout = 10s);

 private:
  TempDir dir_;
  std::string config_path_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  int admin_port_ = 0;
};

// The usual trio: a Redis, an upstream, and cachecar in front of the upstream. The constructor
// returns once cachecar listens and has connected to Redis, so a test's first request already
// meets a working cache. `redis_yaml` holds extra lines of the redis: block (indented).
struct Stack {
  explicit Stack(const std::string& extra_yaml = "", const std::string& routes_yaml = "",
                 const std::string& redis_yaml = "");

  RedisServer redis;
  TestUpstream upstream;
  std::unique_ptr<Cachecar> cachecar;

  int port() const { return cachecar->port(); }
};

// Reads Redis's INFO stats over one connection kept open, so the probe's own connects and
// closes do not show in the counters it reads (a closed connection's EOF counts as a read).
class RedisStatsProbe {
 public:
  explicit RedisStatsProbe(int port);
  // A field of INFO stats, e.g. "total_reads_processed".
  long long stat(const std::string& field);

 private:
  UniqueFd fd_;
  SocketReader reader_;
};

// Polls `condition` every 10 ms until it holds or `timeout` passes: for effects cachecar
// applies after it answers, such as a fill's store. Returns whether it held.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 2s);

// Base YAML for a stack's upstream and Redis.
std::string stack_yaml(const TestUpstream& upstream, const RedisServer& redis,
                       const std::string& redis_yaml = "");

}  // namespace cachecar::test
